public import GeorepLog
import GeorepModel
import GeorepStore

/// How a writer learns that its region's store holds an event of the region's own log.
public protocol StoreProgress: Sendable {
    /// Waits at most `timeout` for the store to hold the event at `position`; returns whether it does.
    func waitUntilStored(_ position: SourcePosition, timeout: Duration) async -> Bool
}

/// The region's own events that Kafka acknowledged but the local store may not hold yet, and
/// the rows whose new events must wait for them.
///
/// A writer builds an event from the row's local state: an increment carries the writer's
/// running total, a remove the tags it observed, a partial `lww` upsert the columns it does not
/// name. Built from a state that misses one of the writer's earlier events, the new event
/// silently undoes that acknowledged write (the total is one short, the add survives its
/// remove). Two cases leave such a gap until the applier reads the events back from the log:
/// - a local apply failed after Kafka's acknowledgement: the row waits for that event;
/// - the node restarted after a crash between an acknowledgement and its local apply: every
///   write waits until the store holds the region's own log up to its end at start, which also
///   brings the clock past every HLC the region published.
///
/// Waiting is woken, never polled: by ``setStartEnds(_:)`` and by the ``StoreProgress``.
final class UnstoredWrites: Sendable {
    private let state: Condition<UnstoredState>
    private let progress: any StoreProgress

    init(progress: any StoreProgress, catchesUpAtStart: Bool) {
        self.progress = progress
        state = Condition(UnstoredState(catchesUpAtStart: catchesUpAtStart))
    }

    /// The ends of the region's own topics at start, which writes wait for.
    func setStartEnds(_ ends: [TopicPartition: Int64]) {
        state.update { $0.setStartEnds(ends) }
    }

    /// Notes that the event at `position` on row `key` is in Kafka but not in the local store.
    func localApplyFailed(key: String, at position: SourcePosition) {
        state.update { $0.localApplyFailed(key: key, at: position) }
    }

    /// Whether the store may miss the event at `position` of the region's own topics.
    func mayMiss(_ position: SourcePosition) -> Bool {
        state.value.mayMiss(position)
    }

    /// Returns once the store holds what a new event of row `key` must be built on, or throws
    /// after `timeout`.
    func waitUntilStored(key: String, region: String, timeout: Duration) async throws(WriteError) {
        let deadline = ContinuousClock.now + timeout
        while true {
            switch state.value.need(key: key) {
            case .nothing:
                return
            case .startEnds:
                guard await state.wait(until: \.knowsStartEnds, timeout: deadline - .now) else {
                    throw .catchingUp("region \(region)'s store does not hold its own log's end at start (not read yet); retry shortly")
                }
            case let .positions(positions):
                for position in positions {
                    guard await progress.waitUntilStored(position, timeout: deadline - .now) else {
                        throw .catchingUp("region \(region)'s store does not hold \(position) of its own log yet (\(state.value.reason(for: position, key: key))); retry shortly")
                    }
                }
                state.update { $0.stored(positions) }
            }
        }
    }
}

/// The state of ``UnstoredWrites`` as a plain value: what the store may miss, and what a new
/// event of a row waits for.
struct UnstoredState: Sendable {
    /// Where writes stand with the region's own log at start.
    enum CatchUp: Equatable {
        /// They wait; the log's ends at start are not known yet.
        case waitingForEnds
        /// They wait until the store holds the log up to these ends.
        case untilStored([TopicPartition: Int64])
        /// They do not wait (caught up, or no catch-up asked for).
        case done
    }

    /// What a new event of a row waits for.
    enum Need: Equatable {
        case nothing
        /// The ends of the region's own log at start, not known yet.
        case startEnds
        /// These positions of the region's own log, in the store.
        case positions([SourcePosition])
    }

    private(set) var catchUp: CatchUp
    /// By row (its Kafka key): the newest of its events whose local apply failed.
    private(set) var rows: [String: SourcePosition] = [:]

    init(catchesUpAtStart: Bool) {
        catchUp = catchesUpAtStart ? .waitingForEnds : .done
    }

    /// Whether the ends at start are known (or never asked for).
    var knowsStartEnds: Bool { catchUp != .waitingForEnds }

    /// Records the ends at start.
    mutating func setStartEnds(_ ends: [TopicPartition: Int64]) {
        if catchUp == .waitingForEnds { catchUp = ends.allSatisfy { $0.value <= 0 } ? .done : .untilStored(ends) }
    }

    mutating func localApplyFailed(key: String, at position: SourcePosition) {
        rows[key] = position
    }

    /// Whether the store may miss the event at `position` of the region's own topics.
    func mayMiss(_ position: SourcePosition) -> Bool {
        switch catchUp {
        case .waitingForEnds: return true
        case let .untilStored(ends) where position.offset < ends[position.partition] ?? .max: return true
        case .untilStored, .done: return rows.values.contains(position)
        }
    }

    /// What a new event of row `key` waits for.
    func need(key: String) -> Need {
        var positions: [SourcePosition] = []
        switch catchUp {
        case .waitingForEnds: return .startEnds
        case let .untilStored(ends):
            positions = ends.filter { $0.value > 0 }.sorted { $0.key < $1.key }
                .map { SourcePosition(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value - 1) }
        case .done: break
        }
        if let row = rows[key] { positions.append(row) }
        return positions.isEmpty ? .nothing : .positions(positions)
    }

    /// Notes that the store holds `positions` (and everything before them in their partitions).
    mutating func stored(_ positions: [SourcePosition]) {
        if case let .untilStored(ends) = catchUp,
           ends.allSatisfy({ end in end.value <= 0 || positions.contains { $0.partition == end.key && $0.offset >= end.value - 1 } }) {
            catchUp = .done
        }
        rows = rows.filter { _, row in !positions.contains { $0.partition == row.partition && $0.offset >= row.offset } }
    }

    /// What the wait for `position` is for, in words.
    func reason(for position: SourcePosition, key: String) -> String {
        rows[key] == position ? "the row's previous write: its local apply failed" : "its own log up to its end at start, after a restart"
    }
}
