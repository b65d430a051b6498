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

    private let store: any EventStore
    private let logger: Logger
    private let state = Mutex(GroupCommitState<Waiter>(maxGroupSize: LocalApplyQueue.maxGroupSize))

    init(store: any EventStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Applies `event` to the store, in a transaction shared with concurrent callers; returns
    /// whether it is applied.
    func apply(_ event: ChangeEvent) async -> Bool {
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let waiter = Waiter(event: event, continuation: continuation)
            if state.withLock({ $0.arrive(waiter) }) { continuation.resume(returning: .lead([waiter])) }
        }
        let group: [Waiter]
        switch turn {
        case let .done(isApplied): return isApplied
        case let .lead(waiters): group = waiters
        }
        let failed = await applyTogether(group.map(\.event))
        let next = state.withLock { $0.finishTransaction() }
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

/// The state of a ``LocalApplyQueue`` as a plain value: whether a transaction runs and who
/// queues for the next one. Its methods say who leads next.
struct GroupCommitState<Waiter> {
    /// The most callers one transaction applies.
    let maxGroupSize: Int
    private(set) var queued: [Waiter] = []
    private(set) var isApplying = false

    init(maxGroupSize: Int) {
        self.maxGroupSize = maxGroupSize
    }

    /// A caller arrives: true when no transaction runs (it leads one now); else it queues.
    mutating func arrive(_ waiter: Waiter) -> Bool {
        if isApplying {
            queued.append(waiter)
            return false
        }
        isApplying = true
        return true
    }

    /// The running transaction is done: returns the next group (its first member leads it,
    /// at most ``maxGroupSize``, in arrival order), or nil when nobody queued (none runs now).
    mutating func finishTransaction() -> [Waiter]? {
        guard !queued.isEmpty else {
            isApplying = false
            return nil
        }
        let group = Array(queued.prefix(maxGroupSize))
        queued.removeFirst(group.count)
        return group
    }
}
