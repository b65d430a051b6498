import Synchronization

/// A value that tasks wait on until it meets a condition: each ``update(_:)`` wakes the
/// waiters whose condition now holds, so nobody polls.
///
/// - Important: thread-safe; conditions run under the lock and must be quick.
final class Condition<Value: Sendable>: Sendable {
    private struct Waiter {
        let isMet: @Sendable (Value) -> Bool
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var value: Value
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        /// Waits cancelled before they were registered.
        var cancelled: Set<UInt64> = []
    }

    private let state: Mutex<State>

    /// A condition over `value`.
    init(_ value: Value) {
        state = Mutex(State(value: value))
    }

    /// The value now.
    var value: Value { state.withLock { $0.value } }

    /// How many tasks wait now.
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Changes the value and wakes the waiters whose condition it now meets; returns what
    /// `change` returns.
    @discardableResult
    func update<Result>(_ change: (inout Value) -> Result) -> Result {
        let (result, ready) = state.withLock { state -> (Result, [CheckedContinuation<Void, any Error>]) in
            let result = change(&state.value)
            let met = state.waiters.filter { $0.value.isMet(state.value) }
            for id in met.keys { state.waiters[id] = nil }
            return (result, met.values.map(\.continuation))
        }
        for continuation in ready { continuation.resume() }
        return result
    }

    /// Returns once the value meets `isMet` (at once if it does now).
    ///
    /// - Throws: `CancellationError` when the task is cancelled first.
    func wait(until isMet: @escaping @Sendable (Value) -> Bool) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let result: Result<Void, any Error>? = state.withLock { state in
                    if isMet(state.value) { return .success(()) }
                    if state.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    state.waiters[id] = Waiter(isMet: isMet, continuation: continuation)
                    return nil
                }
                if let result { continuation.resume(with: result) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                guard let waiter = state.waiters.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil as Waiter?
                }
                return waiter
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
        // A wait that finished before its cancellation leaves no mark behind.
        state.withLock { _ = $0.cancelled.remove(id) }
    }

    /// Waits at most `timeout` for the value to meet `isMet`; returns whether it does.
    func wait(until isMet: @escaping @Sendable (Value) -> Bool, timeout: Duration) async -> Bool {
        let met = await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await self.wait(until: isMet)) != nil }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        return met || isMet(value)
    }
}
