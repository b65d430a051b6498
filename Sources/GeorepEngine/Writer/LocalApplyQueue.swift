import GeorepModel
import GeorepStore
import Logging
import Synchronization

/// Applies the events a writer published to the local store, the events of concurrent
/// writes together in one store transaction (group commit).
///
/// A caller that finds no transaction running applies its event at once and so becomes the
/// leader; callers that arrive meanwhile queue. When the leader's transaction is done, it
/// resumes the callers it applied and hands every queued event (up to ``maxGroupSize``) to
/// the first of them, which applies them in the next transaction. Each caller returns once
/// its own event is applied (or its failure is logged), told which: a store failure is never
/// thrown, since Kafka already has the event and the applier applies it from the log.
final class LocalApplyQueue: Sendable {
    /// The most events applied in one transaction.
    static let maxGroupSize = 1_000

    private enum Turn {
        /// Another caller's transaction applied the event (or failed to).
        case done(isApplied: Bool)
        /// Apply these events (the caller's own first), then hand over.
        case lead([Waiter])
    }

    private struct Waiter {
        let event: ChangeEvent
        let continuation: CheckedContinuation<Turn, Never>
    }

    private struct State {
        var queued: [Waiter] = []
        var isApplying = false
    }

    private let store: any ReplicaStore
    private let logger: Logger
    private let state = Mutex(State())

    init(store: any ReplicaStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Applies `event` to the store, in a transaction shared with concurrent callers; returns
    /// whether it is applied.
    func apply(_ event: ChangeEvent) async -> Bool {
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let waiter = Waiter(event: event, continuation: continuation)
            let leads = state.withLock { state in
                if state.isApplying {
                    state.queued.append(waiter)
                    return false
                }
                state.isApplying = true
                return true
            }
            if leads { continuation.resume(returning: .lead([waiter])) }
        }
        let group: [Waiter]
        switch turn {
        case let .done(isApplied): return isApplied
        case let .lead(waiters): group = waiters
        }
        let failed = await applyTogether(group.map(\.event))
        let next = state.withLock { state -> [Waiter]? in
            guard !state.queued.isEmpty else {
                state.isApplying = false
                return nil
            }
            let taken = Array(state.queued.prefix(Self.maxGroupSize))
            state.queued.removeFirst(taken.count)
            return taken
        }
        for (index, waiter) in group.enumerated().dropFirst() {
            waiter.continuation.resume(returning: .done(isApplied: !failed.contains(index)))
        }
        if let next { next[0].continuation.resume(returning: .lead(next)) }
        return !failed.contains(0)
    }

    /// Applies `events` in one transaction; returns the indices of those that failed.
    private func applyTogether(_ events: [ChangeEvent]) async -> Set<Int> {
        do {
            let outcome = try await store.apply(batch: events.map { SourcedEvent($0, isValidated: true) })
            for failure in outcome.failures {
                logger.error("a published event failed to apply locally; the applier will dead-letter it",
                             metadata: ["reason": .string(failure.reason)])
            }
            return Set(outcome.failures.map(\.index))
        } catch {
            // Kafka has the events: the applier applies them from the log.
            logger.error("local apply of published events failed; the applier will apply them",
                         metadata: ["error": "\(error)", "events": "\(events.count)"])
            return Set(events.indices)
        }
    }
}
