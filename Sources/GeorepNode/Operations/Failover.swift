import GeorepLog
import Foundation
public import GeorepEngine
import GeorepKafka
public import GeorepModel
public import Logging
import Synchronization

/// Promotes a region to primary (`georep failover`, `docs/operations.md#failover`).
///
/// Planned switchover, when the old primary's node answers: a control record tells it to stop
/// taking writes, and once it confirms and its topic's end offsets stop moving, those offsets
/// are the fence point; the target applies up to them; then the promotion records (epoch + 1,
/// the fence point) are written and the target confirms it takes writes. Nothing acknowledged
/// is lost.
///
/// Unplanned failover, when the old primary does not answer (or does not confirm the stop):
/// the fence point is its topic's end offsets now; the target's lag behind them is measured and
/// the failover is refused when it exceeds the allowed data loss, unless forced; forced, the
/// offsets the target had not applied are listed.
///
/// Either way every node refuses events of an older epoch past the fence point (to its
/// dead-letter topic), and the old primary, on reading the records, refuses writes naming the
/// new primary.
public struct Failover: Sendable {
    /// What to do.
    public struct Options: Sendable {
        /// The region to promote.
        public var target: String
        /// The most data loss allowed, as the age of the target's oldest unapplied record of the
        /// old primary's topic; 0 allows none.
        public var maxDataLossMillis: Int64 = 0
        /// Promote even when the loss exceeds ``maxDataLossMillis``.
        public var force = false
        /// How long the old primary has to confirm it stopped taking writes.
        public var drainTimeout: Duration = .seconds(5)
        /// How long the target has to apply the old primary's log in a planned switchover.
        public var catchUpTimeout: Duration = .seconds(60)
        /// How long the target has to confirm its promotion.
        public var confirmTimeout: Duration = .seconds(10)

        /// Options promoting `target`.
        public init(target: String) { self.target = target }
    }

    /// A partition range the target had not applied when it was promoted.
    public struct Unapplied: Sendable, Hashable, CustomStringConvertible {
        /// The old primary's topic partition.
        public var partition: Int32
        /// The first offset not applied.
        public var from: Int64
        /// The fence point (one past the last offset not applied).
        public var upTo: Int64
        /// How many events.
        public var count: Int64 { upTo - from }
        /// `partition p: offsets a..<b (n events)`.
        public var description: String { "partition \(partition): offsets \(from)..<\(upTo) (\(count) events)" }
    }

    /// What a failover did.
    public struct Outcome: Sendable {
        /// Whether it was a planned switchover (old primary drained).
        public var isPlanned: Bool
        /// The old primary.
        public var oldPrimary: String
        /// The new epoch.
        public var epoch: UInt64
        /// The fence point written.
        public var fence: FencePoint
        /// What the target had not applied (empty in a planned switchover).
        public var unapplied: [Unapplied]
        /// Each step and its time.
        public var steps: [(String, Duration)]
        /// The time of the whole command.
        public var total: Duration
        /// How long writes were refused: from the old primary's stop to the new one's first
        /// accepted write (the switch's RTO); nil in an unplanned failover, whose outage began
        /// before the command.
        public var writeOutage: Duration?
    }

    let config: GeorepConfig
    let options: Options
    let http: NodeHTTPClient
    let logger: Logger
    let say: @Sendable (String) -> Void

    /// A failover of `config`'s deployment; `say` receives progress lines.
    public init(config: GeorepConfig, options: Options, http: NodeHTTPClient, logger: Logger, say: @escaping @Sendable (String) -> Void) {
        self.config = config
        self.options = options
        self.http = http
        self.logger = logger
        self.say = say
    }

    /// Runs the failover.
    ///
    /// - Throws: ``FailoverError`` naming why nothing was promoted.
    public func run() async throws(FailoverError) -> Outcome {
        guard config.topology == .singlePrimary else {
            throw .invalid("failover needs topology single-primary; this configuration is \(config.topology.rawValue)")
        }
        guard let target = config.region(id: options.target) else {
            throw .invalid("unknown region \(options.target); the configuration has \(config.regions.map(\.id).joined(separator: ", "))")
        }
        guard options.maxDataLossMillis >= 0 else { throw .invalid("--max-data-loss-ms must not be negative") }
        let start = ContinuousClock.now
        let control = ControlLog(config: config, logger: logger)
        let writer: ControlWriter
        do {
            writer = try ControlWriter(log: control)
        } catch {
            throw .unavailable("cannot write to \(Topics.control) on \(control.cluster): \(error)")
        }
        // Kept for the read after the promotion, which then only fetches what was appended.
        var cursor: ControlCursor
        do {
            cursor = try await control.openCursor()
        } catch {
            await writer.close()
            throw .unavailable("cannot read \(Topics.control) on \(control.cluster): \(error)")
        }
        let probes = EndOffsetProbes(config: config, logger: logger)
        let result: Result<Outcome, FailoverError>
        do {
            result = .success(try await run(to: target, since: start, control: control, cursor: &cursor, writer: writer, probes: probes))
        } catch {
            result = .failure(error)
        }
        await probes.close()
        await cursor.close()
        await writer.close()
        return try result.get()
    }

    private func run(
        to target: RegionConfig, since start: ContinuousClock.Instant,
        control: ControlLog, cursor: inout ControlCursor, writer: ControlWriter, probes: EndOffsetProbes
    ) async throws(FailoverError) -> Outcome {
        var steps: [(String, Duration)] = []
        var stepStart = start
        func step(_ name: String) {
            let elapsed = ContinuousClock.now - stepStart
            steps.append((name, elapsed))
            say(Self.stepLine(name, elapsed))
            stepStart = .now
        }
        let state: ControlState
        do {
            state = try await cursor.read(timeout: .seconds(10))
        } catch {
            throw .unavailable("cannot read \(Topics.control) on \(control.cluster): \(error)")
        }
        let epoch = state.epoch ?? 1
        guard let oldID = state.primary ?? config.primary, let old = config.region(id: oldID) else {
            throw .invalid("no primary is known: neither \(Topics.control) nor the configuration names one")
        }
        guard oldID != target.id else { throw .invalid("\(target.id) is already the primary (epoch \(epoch))") }
        guard await status(of: target) != nil else {
            throw .unavailable("the target \(target.id) does not answer at http://\(target.http); a failover needs its node running")
        }
        // Restating the primary's record changes nothing and connects the writer before writes
        // stop; so does a first read of the end offsets for the fence point (at most a second).
        try await publish(writer, [state.latest[oldID] ?? RegionControlRecord(region: old, isPrimary: true, isAcceptingWrites: true, epoch: epoch)])
        _ = try? await probes.consumer(for: old.kafka).endOffsets(of: changePartitions(of: old), timeout: .seconds(1))
        step("read \(Topics.control): primary \(oldID), epoch \(epoch)")
        let writesStop = ContinuousClock.now

        var isPlanned = false
        if await status(of: old) != nil {
            try await publish(writer, [RegionControlRecord(region: old, isPrimary: true, isAcceptingWrites: false, epoch: epoch)])
            if await waitFor(old, timeout: options.drainTimeout, until: { !$0.acceptingWrites }) {
                isPlanned = true
                step("stop writes at \(oldID)")
            } else {
                say("  \(oldID) did not confirm stopping writes within \(options.drainTimeout): unplanned failover")
                step("ask \(oldID) to stop writes (no answer)")
            }
        } else {
            say("  \(oldID) does not answer at http://\(old.http): unplanned failover")
            step("probe \(oldID) (unreachable)")
        }

        let fenceOffsets: [Int32: Int64]
        /// Whether the fence point is the target's last view of the old primary's log.
        var isTargetsView = false
        do {
            fenceOffsets = try await endOffsets(of: old, settle: isPlanned, probes: probes)
            step("fence point: end offsets of \(Topics.changes(oldID))")
        } catch {
            // The old primary's whole cluster may be down: fence at the end offsets the target
            // saw last; anything the old primary wrote after them is fenced (refused, not lost).
            guard !isPlanned, let status = await status(of: target) else { throw error }
            fenceOffsets = status.ends(Topics.changes(oldID))
            guard fenceOffsets.count == max(1, config.partitions) else {
                throw .unavailable("\(error); and \(target.id) has not seen them either: no fence point can be set")
            }
            isTargetsView = true
            say("  \(error); using the end offsets \(target.id) saw last")
            step("fence point: end offsets of \(Topics.changes(oldID)) seen by \(target.id)")
        }

        var unapplied: [Unapplied] = []
        if isPlanned {
            let reached = await waitFor(target, timeout: options.catchUpTimeout) { status in
                let applied = status.applied(Topics.changes(oldID))
                return fenceOffsets.allSatisfy { applied[$0.key] ?? 0 >= $0.value }
            }
            guard reached else {
                try? await publish(writer, [RegionControlRecord(region: old, isPrimary: true, isAcceptingWrites: true, epoch: epoch)])
                throw .unavailable("\(target.id) did not apply \(oldID)'s log within \(options.catchUpTimeout); \(oldID) takes writes again")
            }
            step("\(target.id) applied everything \(oldID) wrote")
        } else {
            guard let status = await status(of: target) else { throw .unavailable("the target \(target.id) stopped answering") }
            let applied = status.applied(Topics.changes(oldID))
            unapplied = fenceOffsets.sorted { $0.key < $1.key }.compactMap { partition, end in
                let from = applied[partition] ?? 0
                return from < end ? Unapplied(partition: partition, from: from, upTo: end) : nil
            }
            let records = unapplied.map(\.count).reduce(0, +)
            // What may be lost: the oldest unapplied event's age. Where the target has not read
            // the old primary's log for a while (its cluster is cut off from the target), an
            // unapplied event may be as old as that, and writes since are unknown to anyone
            // who can be asked: a sample that old counts as lag too.
            var lagMillis: Int64 = 0
            if records > 0 || isTargetsView {
                // No sample of the old primary: unknown, so more than any allowed loss.
                lagMillis = status.lag(from: oldID).map { max($0.lagMillis, $0.endsAgeMillis) } ?? .max
            }
            let lagText = lagMillis == .max ? "an unknown time (no lag sample)" : "\(lagMillis) ms"
            step("lag of \(target.id) behind \(oldID): \(records) events, \(lagText)")
            if lagMillis > options.maxDataLossMillis || (records > 0 && options.maxDataLossMillis == 0) {
                guard options.force else {
                    throw .dataLoss(
                        "refused: \(target.id) is \(lagText) (\(records) events) behind \(oldID), more than the allowed "
                            + "\(options.maxDataLossMillis) ms; unapplied: \(unapplied.map(\.description).joined(separator: "; ")); "
                            + "--force promotes anyway")
                }
                say("  forced: \(records) events of \(Topics.changes(oldID)) were not applied by \(target.id):")
                for range in unapplied { say("    \(Topics.changes(oldID)) \(range)") }
            }
        }

        let newEpoch = epoch + 1
        let fence = FencePoint(epoch: newEpoch, region: oldID, newPrimary: target.id, offsets: fenceOffsets)
        var records = config.regions.filter { $0.id != target.id }.map {
            RegionControlRecord(region: $0, isPrimary: false, isAcceptingWrites: false, epoch: newEpoch)
        }
        records.append(RegionControlRecord(region: target, isPrimary: true, isAcceptingWrites: true, epoch: newEpoch, fence: fence))
        try await publish(writer, records)
        // Another failover may have promoted a region at the same epoch first (ControlState.take).
        let after: ControlState
        do {
            after = try await cursor.read(timeout: .seconds(10))
        } catch {
            throw .unavailable("cannot read back \(Topics.control) on \(control.cluster): \(error)")
        }
        if let owner = after.promotions[newEpoch], owner != target.id {
            throw .unavailable("another failover promoted \(owner) at epoch \(newEpoch) first; \(target.id) was not promoted")
        }
        step("write promotion and fence (epoch \(newEpoch))")
        let confirmed = await waitFor(target, timeout: options.confirmTimeout) {
            $0.acceptingWrites && $0.epoch == newEpoch
        }
        guard confirmed else { throw .unavailable("\(target.id) did not confirm its promotion within \(options.confirmTimeout)") }
        step("\(target.id) takes writes")
        let total = ContinuousClock.now - start
        let outage = isPlanned ? ContinuousClock.now - writesStop : nil
        if let outage { say(Self.stepLine("writes refused (RTO)", outage)) }
        say(Self.stepLine("total", total))
        return Outcome(
            isPlanned: isPlanned, oldPrimary: oldID, epoch: newEpoch, fence: fence, unapplied: unapplied, steps: steps, total: total,
            writeOutage: outage)
    }

    // MARK: - Parts

    /// `  name ........ 12.3 ms`.
    static func stepLine(_ name: String, _ elapsed: Duration) -> String {
        "  " + name.padding(toLength: max(name.count, 56), withPad: " ", startingAt: 0) + String(format: " %9.1f ms", elapsed.fractionalMilliseconds)
    }

    private func status(of region: RegionConfig) async -> NodeStatus? {
        guard let reply = try? await http.send("GET", region.http, "/v1/status"), reply.status == 200 else { return nil }
        return NodeStatus.decode(reply.body)
    }

    private func waitFor(_ region: RegionConfig, timeout: Duration, until condition: (NodeStatus) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if let status = await status(of: region), condition(status) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return false
    }

    private func publish(_ writer: ControlWriter, _ records: [RegionControlRecord]) async throws(FailoverError) {
        do {
            try await writer.publish(records)
        } catch {
            throw .unavailable("cannot write to \(Topics.control) on \(config.controlCluster): \(error)")
        }
    }

    /// The end offsets of `region`'s change topic; `settle` reads until two reads agree, so
    /// that writes acknowledged just before a drain are inside the fence, for at most 3 s: a
    /// drained node reports itself stopped only once its writes in flight are acknowledged, so
    /// what still moves the offsets then (another producer's records) must not hold the failover.
    private func endOffsets(of region: RegionConfig, settle: Bool, probes: EndOffsetProbes) async throws(FailoverError) -> [Int32: Int64] {
        let partitions = changePartitions(of: region)
        do {
            let probe = try probes.consumer(for: region.kafka)
            var ends = try await probe.endOffsets(of: partitions, timeout: .seconds(5))
            let deadline = ContinuousClock.now + .seconds(3)
            while settle, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(100))
                let again = try await probe.endOffsets(of: partitions, timeout: .seconds(5))
                if again == ends { break }
                ends = again
            }
            return Dictionary(uniqueKeysWithValues: ends.map { ($0.key.partition, $0.value) })
        } catch {
            throw .unavailable("cannot read the end offsets of \(Topics.changes(region.id)) on \(region.kafka): \(error)")
        }
    }

    private func changePartitions(of region: RegionConfig) -> [TopicPartition] {
        Topics.partitions(of: Topics.changes(region.id), in: config)
    }
}

/// Why a failover promoted nothing.
public enum FailoverError: Error, Sendable, CustomStringConvertible {
    /// Bad input.
    case invalid(String)
    /// A node or cluster the failover needs does not answer.
    case unavailable(String)
    /// The target's lag exceeds the allowed data loss.
    case dataLoss(String)

    /// The reason.
    public var description: String {
        switch self {
        case let .invalid(text), let .unavailable(text), let .dataLoss(text): text
        }
    }
}

/// The consumers a failover reads end offsets with: one per cluster, opened on first use and
/// kept until ``close()``, so that the fence point is read over connections made before
/// writes stopped.
final class EndOffsetProbes: Sendable {
    private let config: GeorepConfig
    private let logger: Logger
    private let consumers = Mutex<[String: KafkaConsumer]>([:])

    init(config: GeorepConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// The consumer of `cluster`.
    func consumer(for cluster: String) throws(KafkaError) -> KafkaConsumer {
        let made: Result<KafkaConsumer, KafkaError> = consumers.withLock { consumers in
            if let consumer = consumers[cluster] { return .success(consumer) }
            do throws(KafkaError) {
                let consumer = try KafkaConsumer(
                    configuration: config.consumerConfiguration(cluster, groupID: "georep.failover", clientID: "georep-failover"), logger: logger)
                consumers[cluster] = consumer
                return .success(consumer)
            } catch {
                return .failure(error)
            }
        }
        return try made.get()
    }

    /// Closes every consumer.
    func close() async {
        let all = consumers.withLock { consumers in
            defer { consumers.removeAll() }
            return Array(consumers.values)
        }
        for consumer in all { await consumer.close() }
    }
}
