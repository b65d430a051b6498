import Synchronization

/// Runs async critical sections one at a time per key, without blocking threads: a waiter
/// suspends until the previous holder of its key hands the key over, in arrival order.
final class KeyedSerializer: Sendable {
    private let turns = Mutex(KeyedTurns<CheckedContinuation<Void, Never>>())

    /// Runs `body` while holding `key`.
    func withKey<T, E: Error>(_ key: String, _ body: () async throws(E) -> T) async throws(E) -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if turns.withLock({ $0.acquire(key, waiter: continuation) }) { continuation.resume() }
        }
        defer { turns.withLock { $0.release(key) }?.resume() }
        return try await body()
    }
}

/// The state of a ``KeyedSerializer`` as a plain value: who holds each key and who waits for
/// it. Its methods say who goes next; the caller resumes them outside the lock.
struct KeyedTurns<Waiter> {
    /// For each held key, the waiters queued behind its holder, in arrival order.
    private(set) var queues: [String: [Waiter]] = [:]

    /// Asks for `key`: true when it was free (the caller holds it now); else `waiter` queues.
    mutating func acquire(_ key: String, waiter: Waiter) -> Bool {
        guard queues[key] != nil else {
            queues[key] = []
            return true
        }
        queues[key]!.append(waiter)
        return false
    }

    /// Gives `key` up: returns the waiter that holds it now, or nil when it is free.
    mutating func release(_ key: String) -> Waiter? {
        guard var waiters = queues[key], !waiters.isEmpty else {
            queues[key] = nil
            return nil
        }
        let next = waiters.removeFirst()
        queues[key] = waiters
        return next
    }
}
