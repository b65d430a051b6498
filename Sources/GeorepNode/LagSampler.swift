import GeorepLog
import Foundation
public import GeorepEngine
import GeorepKafka
public import GeorepModel
public import GeorepStore
public import Logging
import Synchronization

/// How far one region is behind one source partition.
public struct PartitionLag: Sendable, Hashable, Codable {
    /// The source region.
    public var source: String
    /// The source topic.
    public var topic: String
    /// The partition.
    public var partition: Int32
    /// The next offset this region applies.
    public var applied: Int64
    /// The partition's end offset (the offset its next record gets).
    public var end: Int64
    /// `end - applied`, never negative.
    public var lagRecords: Int64 { max(0, end - applied) }
    /// How long the oldest unapplied record has been in the log (0 when caught up).
    public var lagMillis: Int64
}

/// How far this region is behind one source region, over all of its partitions.
public struct SourceLag: Sendable, Hashable {
    /// The source region.
    public var source: String
    /// Per partition.
    public var partitions: [PartitionLag]
    /// When the source's end offsets were last read (ms since 1970): older than the sample
    /// while the source's cluster does not answer, when records written since are unknown here.
    public var endsReadAtMillis: Int64 = 0
    /// Unapplied records.
    public var lagRecords: Int64 { partitions.reduce(0) { $0 + $1.lagRecords } }
    /// The age of the oldest unapplied record.
    public var lagMillis: Int64 { partitions.map(\.lagMillis).max() ?? 0 }
    /// The records applied from the source: the sum of the partitions' next offsets, a
    /// monotonic log sequence number of the region's whole topic.
    public var lastLSN: Int64 { partitions.reduce(0) { $0 + $1.applied } }
}

/// Samples the replication lag of a region node behind every source region
/// (`docs/operations.md#lag`).
///
/// Every `interval` it asks each source cluster for the end offsets of the source change topics
/// (one ListOffsets round trip per broker) and compares them with the applier's applied offsets.
/// Lag in records is the difference. Lag in milliseconds is the age of the oldest unapplied
/// record: the sampler remembers when it first saw each end offset, so the record at the applied
/// offset has been waiting since the first sample that saw the log extend past it (accurate to
/// one interval). It is 0 when caught up, however long ago the last event came.
///
/// Each sample updates the lag metrics, `georep_replication_status` in the store, and logs a
/// warning past `warnAfter` and an error past `errorAfter` (once when the level is entered, then
/// every 10 s while it lasts).
public final class LagSampler: Sendable {
    /// Tuning of the sampler.
    public struct Settings: Sendable {
        /// Time between samples.
        public var interval: Duration = .milliseconds(250)
        /// Lag that logs a warning.
        public var warnAfter: Duration = .seconds(1)
        /// Lag that logs an error.
        public var errorAfter: Duration = .seconds(5)
        /// Whether applied positions are read from the store rather than the applier: when the
        /// region's processes share its partitions, the store alone knows them all.
        public var readsStorePositions = false
        /// Extra librdkafka properties of the sampler's Kafka clients.
        public var consumerProperties: [String: String] = [:]

        /// The defaults.
        public init() {}
    }

    private let region: String
    private let config: GeorepConfig
    private let applier: Applier
    private let store: any ReplicaStore
    private let metrics: NodeMetrics
    private let settings: Settings
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        /// Per partition, the end offsets seen and when, oldest first; only ends past the applied offset are kept.
        var seen: [TopicPartition: [(end: Int64, atMillis: Int64)]] = [:]
        var latest: [SourceLag] = []
        var level: [String: (Logger.Level, lastLogged: Int64)] = [:]
    }

    /// Makes a sampler of `region`'s node.
    public init(region: String, config: GeorepConfig, applier: Applier, store: any ReplicaStore, metrics: NodeMetrics, settings: Settings = Settings(), logger: Logger) {
        self.region = region
        self.config = config
        self.applier = applier
        self.store = store
        self.metrics = metrics
        self.settings = settings
        self.logger = logger
    }

    /// The last sample, one entry per source region in configuration order.
    public var latest: [SourceLag] { state.withLock { $0.latest } }

    /// Samples until cancelled.
    public func run() async {
        var clients: [String: KafkaConsumer] = [:]
        defer {
            let all = Array(clients.values)
            Task { for client in all { await client.close() } }
        }
        var lastSaved = ContinuousClock.now - .seconds(60)
        while !Task.isCancelled {
            let lags = await sample(clients: &clients)
            if !lags.isEmpty, ContinuousClock.now - lastSaved >= .seconds(1) {
                lastSaved = .now
                await save(lags)
            }
            try? await Task.sleep(for: settings.interval)
        }
    }

    /// Takes one sample now and returns it.
    @discardableResult
    public func sampleOnce() async -> [SourceLag] {
        var clients: [String: KafkaConsumer] = [:]
        let lags = await sample(clients: &clients)
        for client in clients.values { await client.close() }
        return lags
    }

    private func sample(clients: inout [String: KafkaConsumer]) async -> [SourceLag] {
        let progress = applier.progress
        metrics.refresh(progress: progress, conflicts: (try? await store.conflictCount()) ?? 0)
        var appliedOffsets = progress.appliedOffsets
        if settings.readsStorePositions, let stored = try? await store.positions() {
            appliedOffsets.merge(stored) { max($0, $1) }
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var result: [SourceLag] = []
        for source in config.regions {
            let partitions = Topics.partitions(of: Topics.changes(source.id), in: config)
            let ends: [TopicPartition: Int64]
            do {
                let client = try clients[source.kafka] ?? makeClient(cluster: source.kafka)
                clients[source.kafka] = client
                ends = try await client.endOffsets(of: partitions, timeout: .seconds(2))
            } catch {
                logger.debug("cannot read the end offsets of \(Topics.changes(source.id)): \(error)")
                // Keep the last ends seen (a failover to this region fences at them when the
                // source's cluster is down), with the applied offsets of now; the lag in ms goes
                // on growing from when the oldest unapplied end was seen.
                if let previous = state.withLock({ $0.latest.first { $0.source == source.id } }) {
                    let partitions = state.withLock { state in
                        previous.partitions.map { partition in
                            var partition = partition
                            let key = TopicPartition(topic: partition.topic, partition: partition.partition)
                            partition.applied = appliedOffsets[key] ?? partition.applied
                            partition.end = max(partition.end, partition.applied)
                            let applied = partition.applied
                            partition.lagMillis = state.seen[key]?.first { $0.end > applied }.map { max(0, now - $0.atMillis) } ?? 0
                            return partition
                        }
                    }
                    result.append(SourceLag(source: source.id, partitions: partitions, endsReadAtMillis: previous.endsReadAtMillis))
                }
                continue
            }
            let lags = state.withLock { state in
                partitions.map { partition in
                    let key = TopicPartition(topic: partition.topic, partition: partition.partition)
                    let applied = appliedOffsets[key] ?? 0
                    let end = max(ends[partition] ?? applied, applied)
                    var seen = state.seen[key, default: []]
                    if end > (seen.last?.end ?? applied) { seen.append((end, now)) }
                    seen.removeAll { $0.end <= applied }
                    state.seen[key] = seen
                    return PartitionLag(
                        source: source.id, topic: partition.topic, partition: partition.partition, applied: applied, end: end,
                        lagMillis: seen.first.map { max(0, now - $0.atMillis) } ?? 0)
                }
            }
            let lag = SourceLag(source: source.id, partitions: lags, endsReadAtMillis: now)
            metrics.recordLag(source: source.id, millis: lag.lagMillis, records: lag.lagRecords)
            report(lag, now: now)
            result.append(lag)
        }
        state.withLock { $0.latest = result }
        return result
    }

    private func makeClient(cluster: String) throws(KafkaError) -> KafkaConsumer {
        let configuration = config.consumerConfiguration(
            cluster, groupID: "georep.lag.\(region)", clientID: "georep-lag-\(region)", extra: settings.consumerProperties)
        return try KafkaConsumer(configuration: configuration, logger: logger)
    }

    /// Logs a lag past the thresholds: on entering a level, then every 10 s while it lasts.
    private func report(_ lag: SourceLag, now: Int64) {
        let millis = lag.lagMillis
        let level: Logger.Level =
            millis > settings.errorAfter.milliseconds ? .error : millis > settings.warnAfter.milliseconds ? .warning : .info
        let shouldLog = state.withLock { state in
            let previous = state.level[lag.source]
            let changed = previous?.0 != level
            let due = level != .info && (changed || now - (previous?.lastLogged ?? 0) >= 10_000)
            state.level[lag.source] = (level, due ? now : previous?.lastLogged ?? 0)
            return due || (changed && previous != nil)
        }
        guard shouldLog else { return }
        let text = level == .info
            ? "replication from \(lag.source) caught up"
            : "replication from \(lag.source) is \(millis) ms (\(lag.lagRecords) records) behind"
        logger.log(level: level, "\(text)", metadata: ["source": .string(lag.source), "target": .string(region)])
    }

    private func save(_ lags: [SourceLag]) async {
        let now = Date()
        let records = lags.map {
            ReplicationStatusRecord(
                sourceRegion: $0.source, targetRegion: region, lastLSN: $0.lastLSN, lagRecords: $0.lagRecords,
                lagMillis: $0.lagMillis, updatedAt: now)
        }
        do {
            try await store.saveReplicationStatus(records)
        } catch {
            logger.warning("cannot save the replication status: \(error)")
        }
    }
}
