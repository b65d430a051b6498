import GeorepModel
import Synchronization

/// The progress of an applier and the tasks waiting for it to pass positions: the waiters
/// are resumed by ``update(_:)``, after each batch, so nobody polls.
final class ProgressWaiters: Sendable {
    private struct Waiter {
        var position: SourcePosition
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var progress = ApplierProgress()
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        /// Waits cancelled before they were registered.
        var cancelled: Set<UInt64> = []
    }

    private let state = Mutex(State())

    var progress: ApplierProgress { state.withLock { $0.progress } }

    /// Changes the progress and resumes the waiters whose positions are now applied.
    func update(_ change: (inout ApplierProgress) -> Void) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            change(&state.progress)
            let done = state.waiters.filter { state.progress.isApplied($0.value.position) }
            for id in done.keys { state.waiters[id] = nil }
            return done.values.map(\.continuation)
        }
        ready.forEach { $0.resume() }
    }

    /// Returns once `position` is applied.
    ///
    /// - Throws: `CancellationError` when the task is cancelled first.
    func wait(past position: SourcePosition) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let result: Result<Void, any Error>? = state.withLock { state in
                    if state.progress.isApplied(position) { return .success(()) }
                    if state.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    state.waiters[id] = Waiter(position: position, continuation: continuation)
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
}
