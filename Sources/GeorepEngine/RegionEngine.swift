import GeorepKafka
public import GeorepLog
public import GeorepModel
public import GeorepStore
public import Logging

/// One region's replication engine, built and wired in one place for a node, a benchmark or a
/// test: the hybrid logical clock, the ``Writer`` and the ``Applier`` that share it, the ledger
/// that lets each of the region's own events be merged once, the fence points and the pause
/// both obey, and the directory of region-pinned rows' homes.
///
/// It answers what a node asks of replication: write a row (claiming a new pinned row's home
/// first), whether a read-your-writes token is applied here, wait for one. The caller owns
/// the store; ``run()`` runs the appliers and ``close()`` releases the Kafka producers after.
public final class RegionEngine: Sendable {
    /// Tuning of an engine.
    public struct Settings: Sendable {
        /// The applier's tuning (its fences and pause are the engine's own).
        public var applier = Applier.Settings()
        /// The writer's counter slot, for a region served by several processes (each needs its
        /// own); nil for the region's own slot.
        public var writerID: String?
        /// `linger.ms` of the writer's producer: how long a write waits to share a batch.
        public var writerLingerMilliseconds = 2
        /// Extra librdkafka properties of the writer's and the directory's producers.
        public var producerProperties: [String: String] = [:]
        /// Whether writes wait, after a start, until the store holds the region's own log up to
        /// its ends (see ``catchUp(toOwnLogEnds:)``); false for a store known to be current.
        public var catchesUpAtStart = true
        /// Whether `georep.directory` is followed and new pinned rows are claimed there; false:
        /// a pinned row is written wherever it is asked for (tests and benchmarks without the topic).
        public var followsDirectory = true

        /// The defaults.
        public init() {}
    }

    /// The region this engine replicates.
    public let region: String
    /// The deployment's configuration.
    public let config: GeorepConfig
    /// The region's store (the caller opens and closes it).
    public let store: any ReplicaStore
    /// The clock shared by the writer and the appliers.
    public let clock: HybridLogicalClock
    /// Publishes this region's writes.
    public let writer: Writer
    /// Applies every region's events to the store.
    public let applier: Applier
    /// Applies `georep.directory`, the claims of region-pinned rows' homes; nil when not followed.
    public let directoryApplier: Applier?
    /// Claims and looks up the homes of region-pinned rows; nil when the directory is not followed.
    public let pinnedHomes: PinnedHomes?
    /// The fence points the writer and the applier enforce.
    public let fences: FenceRegistry
    /// The operator's pause of the applier.
    public let pause: PauseSwitch
    /// Which of the region's own events the writer merged already, so that the applier only
    /// records their positions; nil for processes sharing the region's partitions.
    public let localApplyLedger: LocalApplyLedger?
    private let sharesPartitions: Bool
    private let producer: KafkaProducer
    private let directoryProducer: KafkaProducer?

    /// Builds the engine of `region` on its open `store`.
    ///
    /// - Parameters:
    ///   - epoch: the writer epoch stamped on new events (the fencing token).
    ///   - acceptsWrites: whether writes of replicated tables are taken.
    ///   - clockGuard: refuses writes while the node's clock is too far from the other regions'.
    /// - Throws: ``ApplierError/unknownRegion(_:)``, a store error reading its high-water mark,
    ///   or a `KafkaError` making a producer.
    public init(
        region: String, config: GeorepConfig, store: any ReplicaStore, epoch: UInt64, acceptsWrites: Bool,
        settings: Settings = Settings(), clockGuard: ClockGuard? = nil, logger: Logger
    ) async throws {
        guard let own = config.region(id: region) else { throw ApplierError.unknownRegion(region) }
        self.region = region
        self.config = config
        self.store = store
        clock = HybridLogicalClock(maxOffsetMillis: config.hlcMaxOffsetMillis, floor: try await store.highWaterMark())
        fences = FenceRegistry()
        pause = PauseSwitch()
        sharesPartitions = settings.applier.sharesPartitions

        var producerConfiguration = config.producerConfiguration(own.kafka, clientID: "georep-writer-\(region)", extra: settings.producerProperties)
        producerConfiguration.lingerMilliseconds = settings.writerLingerMilliseconds
        producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        if settings.followsDirectory {
            var configuration = config.producerConfiguration(config.controlCluster, clientID: "georep-directory-\(region)", extra: settings.producerProperties)
            configuration.lingerMilliseconds = 0
            do {
                directoryProducer = try KafkaProducer(configuration: configuration, logger: logger)
            } catch {
                await producer.close()
                throw error
            }
        } else {
            directoryProducer = nil
        }
        // Without this, librdkafka 2.0.2 holds the first writes while it looks the topics up.
        await producer.prepare(topics: [Topics.changes(region)] + (settings.applier.consumesPinnedTopic ? [Topics.pinned(region)] : []))
        await directoryProducer?.prepare(topics: [Topics.directory])

        var applierSettings = settings.applier
        applierSettings.fences = fences
        applierSettings.pause = pause
        // Scale-out processes share partitions: another process's applier may reach this writer's events.
        localApplyLedger = sharesPartitions ? nil : LocalApplyLedger()
        applierSettings.localApplyLedger = localApplyLedger
        applier = try Applier(region: region, config: config, store: store, clock: clock, settings: applierSettings, logger: logger)
        let storeProgress: any StoreProgress = sharesPartitions ? StoredPositions(store: store) : applier
        writer = Writer(
            region: region, config: config, store: store, clock: clock, producer: producer, epoch: epoch, acceptsWrites: acceptsWrites,
            writerID: settings.writerID, localApplyLedger: applierSettings.localApplyLedger, fences: fences, storeProgress: storeProgress,
            catchesUpAtStart: settings.catchesUpAtStart, clockGuard: clockGuard, logger: logger)
        if let directoryProducer {
            // Claims are never paused nor fenced, and every process of a region follows them all.
            var directorySettings = Applier.Settings()
            directorySettings.source = .directory
            directorySettings.consumerProperties = settings.applier.consumerProperties
            directorySettings.producerProperties = settings.applier.producerProperties
            directorySettings.deadLetterLease = settings.applier.deadLetterLease
            let directoryApplier = try Applier(region: region, config: config, store: store, clock: clock, settings: directorySettings, logger: logger)
            self.directoryApplier = directoryApplier
            pinnedHomes = PinnedHomes(
                region: region, config: config, store: store, clock: clock, producer: directoryProducer, follower: directoryApplier, clockGuard: clockGuard)
        } else {
            directoryApplier = nil
            pinnedHomes = nil
        }
    }

    /// The appliers: the replicated rows', then the directory's when it is followed.
    public var appliers: [Applier] { [applier] + (directoryApplier.map { [$0] } ?? []) }

    /// Runs the appliers until ``stop()`` (or cancellation). When one returns or fails, the
    /// others are asked to stop and finish their batches.
    ///
    /// - Throws: the first ``ApplierError`` of an applier.
    public func run() async throws {
        var failure: (any Error)?
        await withTaskGroup(of: (any Error)?.self) { group in
            for applier in appliers {
                group.addTask {
                    do {
                        try await applier.run()
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            var isFirst = true
            for await outcome in group {
                if isFirst { stop() }
                isFirst = false
                if failure == nil { failure = outcome }
            }
        }
        if let failure { throw failure }
    }

    /// Asks ``run()`` to return after the batches in progress.
    public func stop() {
        applier.stop()
        directoryApplier?.stop()
    }

    /// Flushes and closes the producers: after ``run()`` has returned and the last write.
    public func close() async {
        await producer.close()
        await directoryProducer?.close()
    }

    // MARK: - Writes

    /// Writes `request`: a new row of a region-pinned table is first claimed in the directory
    /// (the first claim wins in every region), and a row whose home is elsewhere is refused.
    ///
    /// - Throws: ``WriteError`` naming the problem; a refused request writes nothing.
    public func write(_ request: WriteRequest) async throws(WriteError) -> WriteReceipt {
        if let pinnedHomes, let table = config.table(named: request.table), table.merge == .pinned, request.operation != .delete {
            let home = try await pinnedHomes.home(of: table, key: request.key, epoch: writer.epoch)
            if home != region { throw .pinnedElsewhere(table: table.name, homeRegion: home) }
        }
        return try await writer.write(request)
    }

    /// Replaces the epoch stamped on new events and whether writes of replicated tables are taken.
    public func updateRole(epoch: UInt64, acceptsWrites: Bool) {
        writer.updateRole(epoch: epoch, acceptsWrites: acceptsWrites)
    }

    /// Tells the writer the ends of the region's own topics at start, which writes wait for the
    /// store to hold (with ``Settings/catchesUpAtStart``).
    public func catchUp(toOwnLogEnds ends: [TopicPartition: Int64]) {
        writer.catchUp(toOwnLogEnds: ends)
    }

    // MARK: - Read-your-writes tokens

    /// A token's event in the log: in its region's change topic, or pinned topic for a pinned table.
    public func position(of token: WriteToken, table: TableSchema) -> SourcePosition {
        let topic = table.merge == .pinned ? Topics.pinned(token.region) : Topics.changes(token.region)
        return SourcePosition(topic: topic, partition: token.partition, offset: token.offset)
    }

    /// Whether the token's write is in this region's store. The writer applies a write to its
    /// own region's store before acknowledging it, so this region's own tokens are, unless that
    /// local apply failed or the node restarted before it (the writer knows). Processes sharing
    /// the region's partitions learn each other's progress from the store.
    public func isApplied(_ token: WriteToken, table: TableSchema) async -> Bool {
        let position = position(of: token, table: table)
        if token.region == region, !writer.mayMissOwnEvent(at: position) { return true }
        if applier.progress.isApplied(position) { return true }
        guard sharesPartitions, let stored = try? await store.positions() else { return false }
        return (stored[position.partition] ?? 0) > position.offset
    }

    /// Waits at most `timeout` for the token's write to be applied here; returns whether it is.
    public func waitUntilApplied(_ token: WriteToken, table: TableSchema, timeout: Duration) async -> Bool {
        if await isApplied(token, table: table) { return true }
        guard timeout > .zero else { return false }
        let position = position(of: token, table: table)
        if sharesPartitions { return await StoredPositions(store: store).waitUntilStored(position, timeout: timeout) }
        return await applier.waitUntilApplied(past: position, timeout: timeout)
    }
}

extension Applier: StoreProgress {
    /// The applier's progress: what it committed is in the store.
    public func waitUntilStored(_ position: SourcePosition, timeout: Duration) async -> Bool {
        await waitUntilApplied(past: position, timeout: timeout)
    }
}

/// The store's positions, read every 20 ms: the only way a process of a scaled-out region
/// learns what the region's other processes applied to their shared PostgreSQL store.
struct StoredPositions: StoreProgress {
    let store: any EventStore

    func waitUntilStored(_ position: SourcePosition, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let stored = try? await store.positions(), (stored[position.partition] ?? 0) > position.offset { return true }
            guard ContinuousClock.now < deadline, (try? await Task.sleep(for: .milliseconds(20))) != nil else { return false }
        }
    }
}
