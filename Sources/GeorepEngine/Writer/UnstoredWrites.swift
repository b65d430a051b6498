import GeorepModel
import GeorepStore
import Synchronization

/// The region's own events that Kafka acknowledged but the local store may not hold yet, and
/// the rows whose new events must wait for them.
///
/// A writer builds an event from the row's local state: an increment carries the writer's
/// running total, a remove the tags it observed, a partial `lww` upsert the columns it does not
/// name. Built from a state that misses one of the writer's earlier events, the new event
/// silently undoes that acknowledged write (the total is one short, the add survives its
/// remove). Two cases leave such a gap until the applier reads the events back from the log:
/// - a local apply failed after Kafka's acknowledgement: the row waits for that event;
/// - the node restarted after a crash between an acknowledgement and its local apply (SPEC
///   §1): every write waits until the store holds the region's own log up to its end at start,
///   which also brings the clock past every HLC the region published.
final class UnstoredWrites: Sendable {
    /// Where writes stand with the region's own log at start.
    private enum CatchUp {
        /// They wait; the log's ends at start are not known yet.
        case waitingForEnds
        /// They wait until the store holds the log up to these ends.
        case untilStored([SourcePartition: Int64])
        /// They do not wait (caught up, or no catch-up asked for).
        case done
    }

    private struct State {
        var catchUp: CatchUp
        /// By row (its Kafka key): the newest of its events whose local apply failed.
        var rows: [String: SourcePosition] = [:]
    }

    private let state: Mutex<State>
    private let store: any ReplicaStore
    /// How often the store's positions are read while waiting.
    private static let pollInterval = Duration.milliseconds(20)

    init(store: any ReplicaStore, catchesUpAtStart: Bool) {
        self.store = store
        state = Mutex(State(catchUp: catchesUpAtStart ? .waitingForEnds : .done))
    }

    /// The ends of the region's own topics at start, which writes wait for.
    func setStartEnds(_ ends: [SourcePartition: Int64]) {
        state.withLock { state in
            if case .waitingForEnds = state.catchUp { state.catchUp = .untilStored(ends) }
        }
    }

    /// Notes that the event at `position` on row `key` is in Kafka but not in the local store.
    func localApplyFailed(key: String, at position: SourcePosition) {
        state.withLock { $0.rows[key] = position }
    }

    /// Whether the store may miss the event at `position` of the region's own topics.
    func mayMiss(_ position: SourcePosition) -> Bool {
        state.withLock { state in
            switch state.catchUp {
            case .waitingForEnds: return true
            case let .untilStored(ends) where position.offset < ends[position.partition] ?? .max: return true
            case .untilStored, .done: return state.rows.values.contains(position)
            }
        }
    }

    /// Returns once the store holds what a new event of row `key` must be built on, or throws
    /// after `timeout`.
    func waitUntilStored(key: String, region: String, timeout: Duration) async throws(WriteError) {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (catchUp, row) = state.withLock { ($0.catchUp, $0.rows[key]) }
            if case .done = catchUp, row == nil { return }
            var missing: String?
            if let positions = try? await store.positions() {
                switch catchUp {
                case .waitingForEnds:
                    missing = "its own log's end at start (not read yet)"
                case let .untilStored(ends):
                    if let behind = ends.first(where: { positions[$0.key] ?? 0 < $0.value }) {
                        missing = "its own log up to \(behind.key.topic)[\(behind.key.partition)]@\(behind.value) after a restart"
                    } else {
                        state.withLock { $0.catchUp = .done }
                    }
                case .done:
                    break
                }
                if missing == nil, let row {
                    if positions[row.partition] ?? 0 > row.offset {
                        state.withLock { if $0.rows[key] == row { $0.rows[key] = nil } }
                    } else {
                        missing = "the row's previous write \(row) (its local apply failed)"
                    }
                }
                if missing == nil { return }
            } else {
                missing = "its own earlier writes (the store's positions cannot be read)"
            }
            guard ContinuousClock.now < deadline else {
                throw .catchingUp("region \(region)'s store does not hold \(missing ?? "its own earlier writes") yet; retry shortly")
            }
            try? await Task.sleep(for: Self.pollInterval)
        }
    }
}
