import Synchronization

/// Runs async critical sections one at a time per key, without blocking threads: a waiter
/// suspends until the previous holder of its key hands the key over, in arrival order.
final class KeyedSerializer: Sendable {
    /// For each held key, the waiters queued behind its holder.
    private let held = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    /// Runs `body` while holding `key`.
    func withKey<T, E: Error>(_ key: String, _ body: () async throws(E) -> T) async throws(E) -> T {
        await acquire(key)
        defer { release(key) }
        return try await body()
    }

    private func acquire(_ key: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isFree = held.withLock { held in
                if held[key] == nil {
                    held[key] = []
                    return true
                }
                held[key, default: []].append(continuation)
                return false
            }
            if isFree { continuation.resume() }
        }
    }

    /// Hands the key to the next waiter, or frees it.
    private func release(_ key: String) {
        let next = held.withLock { held -> CheckedContinuation<Void, Never>? in
            guard var waiters = held[key], !waiters.isEmpty else {
                held[key] = nil
                return nil
            }
            let first = waiters.removeFirst()
            held[key] = waiters
            return first
        }
        next?.resume()
    }
}
