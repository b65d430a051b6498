public import GeorepLog
import Foundation
import GeorepKafka
public import GeorepModel
public import GeorepStore
public import Logging
import Synchronization

/// Applies every region's change events to one region's store (`docs/operations.md#guarantees`).
///
/// ``run()`` consumes `georep.<R>.changes` of every configured region R (and this region's
/// `georep.<region>.pinned`), each from its region's own Kafka cluster with one consumer per
/// distinct cluster. Partitions are assigned from the store's positions (a partition without
/// one starts at the beginning of the log), so the store, not Kafka, decides where to resume.
///
/// Each poll returns whatever has arrived; the batch is decoded, the node's clock advanced, and
/// the events applied in one store transaction with their offsets. The same offsets are then
/// committed to Kafka group `georep.apply.<region>` asynchronously, only for Kafka tooling.
/// Records that cannot be decoded or applied go to `georep.<region>.dlq` with their key, value
/// and headers plus `georep-error` and `georep-source`; their offsets advance too. Records lost
/// to retention are reported as errors and in ``progress``, never skipped silently.
public final class Applier: Sendable {
    /// What an applier consumes.
    public enum Source: Sendable, Hashable {
        /// Every region's change topic, and this region's pinned topic when
        /// ``Settings/consumesPinnedTopic``: the replicated rows.
        case replication
        /// `georep.directory` on the control cluster: the claims of region-pinned rows' homes,
        /// applied in the topic's one order (the first claim of a row wins in every region).
        case directory
    }

    /// Tuning of an applier.
    public struct Settings: Sendable {
        /// What it consumes.
        public var source = Source.replication
        /// The most records applied in one transaction. A poll takes what is ready, so batches
        /// are small when the applier keeps up; when it catches up, larger transactions write
        /// each changed page to the SQLite WAL fewer times (measured with `georep bench apply`:
        /// 2,000 applied 47% of the plain loop's rate, 5,000 62%, 16,000 90%), while the writer's
        /// local applies wait for the transaction in progress (about 50 ms at 5,000).
        public var maxBatchSize = 5_000
        /// How long a poll waits for the first record; also the longest time before a stop is seen.
        public var pollTimeout: Duration = .milliseconds(100)
        /// Whether this region's pinned topic is consumed (it must exist then).
        public var consumesPinnedTopic = true
        /// Scale-out: the region's node processes share its source partitions through the
        /// consumer group `georep.apply.<region>`, Kafka splitting them between the processes
        /// and moving a vanished process's partitions to the others. Each process starts a
        /// partition it is given at the store's position, so the processes must share one store
        /// (PostgreSQL). False: this applier takes every partition itself.
        public var sharesPartitions = false
        /// Extra librdkafka properties of the consumers.
        public var consumerProperties: [String: String] = [:]
        /// Extra librdkafka properties of the dead-letter producer.
        public var producerProperties: [String: String] = [:]
        /// How long this applier holds the dead letters it takes from the store to publish them;
        /// also how often it looks for letters whose claimer failed or stopped (another process
        /// sharing the store, or an earlier run of this one) and publishes them.
        public var deadLetterLease: Duration = .seconds(30)
        /// The fence points to enforce; nil for none. A ``RegionEngine`` sets its own.
        public var fences: FenceRegistry?
        /// The operator's pause; nil for none. A ``RegionEngine`` sets its own.
        public var pause: PauseSwitch?
        /// Shared with the node's ``Writer``: the region's events it applied locally are only
        /// recorded as applied, not merged again. Nil: every event is merged. A ``RegionEngine``
        /// sets its own.
        public var localApplyLedger: LocalApplyLedger?

        /// The defaults.
        public init() {}
    }

    /// The region whose store this applier fills.
    public let region: String
    private let config: GeorepConfig
    private let store: any ReplicaStore
    private let decoder: RecordDecoder
    private let settings: Settings
    private let logger: Logger
    /// The progress, which readers and writers wait on.
    private let waiters = Condition(ApplierProgress())
    private let isStopping = Atomic<Bool>(false)
    /// The source partitions, by the bootstrap servers of the cluster that holds them.
    private let partitionsByCluster: [String: [TopicPartition]]
    private let ownCluster: String

    /// Makes an applier for `region`'s store; ``run()`` starts it.
    ///
    /// - Parameter clock: the node's clock, shared with its ``Writer``: every applied event advances it.
    /// - Throws: ``ApplierError/unknownRegion(_:)``.
    public init(
        region: String, config: GeorepConfig, store: any ReplicaStore, clock: HybridLogicalClock,
        settings: Settings = Settings(), logger: Logger
    ) throws(ApplierError) {
        guard let own = config.region(id: region) else { throw .unknownRegion(region) }
        self.region = region
        self.config = config
        self.store = store
        self.decoder = RecordDecoder(codec: ChangeEventCodec(config: config), clock: clock, fences: settings.fences)
        self.settings = settings
        self.logger = logger
        self.ownCluster = own.kafka
        var byCluster: [String: [TopicPartition]] = [:]
        switch settings.source {
        case .replication:
            for source in config.regions {
                byCluster[source.kafka, default: []] += Topics.partitions(of: Topics.changes(source.id), in: config)
            }
            if settings.consumesPinnedTopic {
                byCluster[own.kafka, default: []] += Topics.partitions(of: Topics.pinned(region), in: config)
            }
        case .directory:
            byCluster[config.controlCluster] = [TopicPartition(topic: Topics.directory, partition: 0)]
        }
        self.partitionsByCluster = byCluster
    }

    /// The applier's progress now.
    public var progress: ApplierProgress { waiters.value }

    /// Returns once the event at `position` is applied (or dead-lettered), without polling.
    ///
    /// - Throws: `CancellationError` when the calling task is cancelled first.
    public func waitUntilApplied(past position: SourcePosition) async throws {
        try await waiters.wait { $0.isApplied(position) }
    }

    /// Waits at most `timeout` for the event at `position` to be applied; returns whether it is.
    public func waitUntilApplied(past position: SourcePosition, timeout: Duration) async -> Bool {
        await waiters.wait(until: { $0.isApplied(position) }, timeout: timeout)
    }

    /// Asks ``run()`` to return after the batch in progress (as cancelling its task does).
    public func stop() {
        isStopping.store(true, ordering: .relaxed)
        settings.pause?.wakeAll()
    }

    /// Consumes and applies until cancelled or stopped, then closes its Kafka clients.
    ///
    /// - Important: call once per applier.
    /// - Throws: ``ApplierError`` when the store or Kafka fails beyond recovery.
    public func run() async throws(ApplierError) {
        let positions: [TopicPartition: Int64]
        do {
            positions = try await store.positions()
        } catch {
            throw .store("cannot read the applied positions: \(error)")
        }
        waiters.update { $0.appliedOffsets = positions; $0.isRunning = true }
        defer { waiters.update { $0.isRunning = false } }

        let producerConfiguration = config.producerConfiguration(ownCluster, clientID: "georep-dlq-\(region)", extra: settings.producerProperties)
        let deadLetters: DeadLetterPublisher
        do {
            deadLetters = DeadLetterPublisher(
                topic: Topics.deadLetters(region), producer: try KafkaProducer(configuration: producerConfiguration, logger: logger),
                store: store, logger: logger, lease: settings.deadLetterLease)
        } catch {
            throw .kafka("cannot create the dead-letter producer: \(error)")
        }
        var consumers: [(KafkaConsumer, [TopicPartition])] = []
        var failure: ApplierError?
        do {
            // Dead letters a previous run stored but did not publish.
            let published = try await deadLetters.publishStored(originals: [:])
            if published > 0 { logger.notice("published \(published) dead letters left by a previous run") }
            for (cluster, partitions) in partitionsByCluster.sorted(by: { $0.key < $1.key }) {
                if settings.sharesPartitions {
                    let consumer = try makeConsumer(cluster: cluster, rebalance: KafkaConsumer.RebalanceHandlers(onAssign: { self.startPositions(of: $0) }))
                    consumers.append((consumer, partitions))
                    try consumer.subscribe(topics: Set(partitions.map(\.topic)).sorted())
                    continue
                }
                let consumer = try makeConsumer(cluster: cluster)
                consumers.append((consumer, partitions))
                try await consumer.assign(partitions.map { partition in
                    let next = positions[TopicPartition(topic: partition.topic, partition: partition.partition)]
                    return TopicPartitionOffset(partition, offset: next.map { KafkaOffset($0) } ?? .beginning)
                })
            }
            logger.info("applier started", metadata: ["region": .string(region), "source": "\(settings.source)", "partitions": "\(partitionsByCluster.values.map(\.count).reduce(0, +))"])
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await self.publishLapsedDeadLetters(deadLetters) }
                if settings.sharesPartitions { group.addTask { await self.refreshPositions() } }
                try await withThrowingTaskGroup(of: Void.self) { consuming in
                    for (consumer, partitions) in consumers {
                        consuming.addTask { try await self.consume(consumer, partitions: partitions, deadLetters: deadLetters) }
                    }
                    try await consuming.waitForAll()
                }
                group.cancelAll()
            }
        } catch is CancellationError {
            // Cancelled while a batch was being stored: a stop like any other.
        } catch let error as ApplierError {
            failure = error
        } catch let error as KafkaError {
            failure = .kafka(error.description)
        } catch {
            failure = .store(String(describing: error))
        }
        for (consumer, _) in consumers { await consumer.close() }
        await deadLetters.close()
        if let failure {
            logger.error("applier stopped: \(failure)")
            throw failure
        }
        logger.info("applier stopped", metadata: ["region": .string(region)])
    }

    /// Every lease, publishes the stored dead letters no one holds: those whose claimer failed
    /// or stopped before removing them. Returns when cancelled.
    private func publishLapsedDeadLetters(_ deadLetters: DeadLetterPublisher) async {
        while true {
            do {
                try await Task.sleep(for: settings.deadLetterLease)
            } catch {
                return
            }
            do {
                let published = try await deadLetters.publishStored(originals: [:])
                if published > 0 { logger.notice("published \(published) stored dead letters whose claim had lapsed") }
            } catch {
                logger.error("cannot publish stored dead letters; trying again in \(settings.deadLetterLease): \(error)")
            }
        }
    }

    private func makeConsumer(cluster: String, rebalance: KafkaConsumer.RebalanceHandlers = .init()) throws(KafkaError) -> KafkaConsumer {
        let (group, client) = settings.source == .directory
            ? (Topics.directoryGroup(region), "georep-directory-\(region)") : (Topics.applyGroup(region), "georep-apply-\(region)")
        var configuration = config.consumerConfiguration(cluster, groupID: group, clientID: client, extra: settings.consumerProperties)
        configuration.offsetReset = .error
        return try KafkaConsumer(configuration: configuration, logger: logger, rebalance: rebalance)
    }

    /// Where partitions the group gives this process start: at the positions of the store as
    /// this applier last knew them (``progress``: read at start, after each batch, and every
    /// ``positionRefreshInterval`` while sharing partitions); a partition without one starts at
    /// the log's beginning.
    ///
    /// Runs on the consumer's polling thread inside a rebalance, so it only reads memory. A
    /// position another process advanced since the last refresh is behind the store's: the
    /// events between are consumed again and the store skips them (it never applies an event
    /// below its position), so no row changes twice; a record refused before the store (an
    /// undecodable or fenced one) in that stretch is dead-lettered again, as after a crash.
    private func startPositions(of partitions: [TopicPartition]) -> [TopicPartition: KafkaOffset] {
        let known = progress.appliedOffsets
        let starts = Dictionary(uniqueKeysWithValues: partitions.map { ($0, known[$0].map { KafkaOffset($0) } ?? .beginning) })
        logger.info("applying partitions given by the group from the store's positions", metadata: ["partitions": "\(starts.count)"])
        return starts
    }

    /// How often an applier sharing its region's partitions reads the store's positions, which
    /// the region's other processes advance: where a partition the group moves here starts.
    static let positionRefreshInterval = Duration.seconds(1)

    /// Every ``positionRefreshInterval``, merges the store's positions into ``progress``.
    /// Returns when cancelled.
    private func refreshPositions() async {
        while (try? await Task.sleep(for: Self.positionRefreshInterval)) != nil {
            await mergeStoredPositions()
        }
    }

    /// Merges the store's positions into ``progress``.
    private func mergeStoredPositions() async {
        do {
            let stored = try await store.positions()
            waiters.update { $0.appliedOffsets.merge(stored, uniquingKeysWith: max) }
        } catch {
            logger.warning("cannot read the store's positions, which the region's other processes advance: \(error)")
        }
    }

    private var shouldStop: Bool { Task.isCancelled || isStopping.load(ordering: .relaxed) }

    /// Returns once the operator's pause is off, or the applier is stopping.
    private func waitWhilePaused() async {
        guard let pause = settings.pause else { return }
        while true {
            // The mark first: a stop between the check and the wait wakes the wait.
            let mark = pause.wakeMark
            guard pause.isPaused, !shouldStop else { return }
            await pause.waitForChange(since: mark)
        }
    }

    /// The loop of one consumer: poll, decode, apply, repeat until stopped.
    ///
    /// Two stages overlap: while one batch is applied in its store transaction, the next is
    /// polled and decoded. Batches are applied one at a time and in poll order; a stop lets the
    /// batch being applied finish.
    private func consume(_ consumer: KafkaConsumer, partitions: [TopicPartition], deadLetters: DeadLetterPublisher) async throws {
        try await withThrowingTaskGroup(of: Void.self) { applying in
            var isApplying = false
            /// Waits for the batch being applied, if any, rethrowing its failure.
            func finishApplying() async throws {
                if isApplying { try await applying.next() }
                isApplying = false
            }
            while !shouldStop {
                await waitWhilePaused()
                let messages: [KafkaMessage]
                do throws(KafkaError) {
                    messages = try await consumer.poll(maxMessages: settings.maxBatchSize, timeout: settings.pollTimeout)
                } catch where error.code == .offsetOutOfRange || error.code == .autoOffsetReset {
                    try await finishApplying()  // the lost ranges are computed from the applied offsets
                    // Sharing the region's partitions, only those the group gave this process.
                    let owned = settings.sharesPartitions ? partitions.filter(consumer.assignment.contains) : partitions
                    await reportLostEvents(consumer, partitions: owned, error: error)
                    continue
                } catch {
                    if error.isFatal { throw ApplierError.kafka(error.description) }
                    logger.warning("poll failed, retrying: \(error)")
                    try? await Task.sleep(for: .milliseconds(100))
                    continue
                }
                guard !messages.isEmpty else { continue }
                // A batch polled while a pause began waits too: nothing is applied once paused.
                await waitWhilePaused()
                if shouldStop { break }
                let batch = decode(messages)
                try await finishApplying()
                applying.addTask { try await self.apply(batch, consumer: consumer, deadLetters: deadLetters) }
                isApplying = true
            }
            try await finishApplying()
        }
    }

    /// A polled batch, decoded: the events to apply and the records refused before the store.
    private struct DecodedBatch: Sendable {
        var events: [SourcedEvent] = []
        /// The record of each event, at the same index.
        var messages: [KafkaMessage] = []
        var refused: [RefusedRecord] = []
        /// Events the node's writer applied already: only their positions are stored.
        var alreadyApplied: [SourcePosition] = []
        /// The highest HLC of the batch's events.
        var highestHLC = HLCTimestamp.zero

        /// The records of the events by position, for dead letters that keep their record's
        /// key, value and headers (only built when the store refused an event).
        var originals: [SourcePosition: KafkaMessage] {
            Dictionary(zip(events.compactMap(\.source), messages), uniquingKeysWith: { first, _ in first })
        }
    }

    /// Decodes a polled batch and advances the node's clock with its events. Events the node's
    /// writer applied already are not decoded: only their positions are stored.
    private func decode(_ messages: [KafkaMessage]) -> DecodedBatch {
        var batch = DecodedBatch()
        let appliedByWriter = settings.localApplyLedger.map { ledger in
            ledger.takeAppliedByWriter(messages.compactMap { $0.isPartitionEOF ? nil : $0.sourcePosition })
        } ?? [:]
        batch.events.reserveCapacity(messages.count)
        batch.messages.reserveCapacity(messages.count)
        var topics = TopicRegions()
        for message in messages where !message.isPartitionEOF {
            let position = message.sourcePosition
            // Past a fence point the writer's local apply may have raced the fence: decode, so that
            // the fence is checked against the event's epoch.
            if let hlc = appliedByWriter[position], settings.fences?.isPastFencePoint(position) != true {
                batch.alreadyApplied.append(position)
                batch.highestHLC = max(batch.highestHLC, hlc)
                continue
            }
            switch decoder.decode(message, topics: &topics) {
            case let .success(event):
                batch.events.append(SourcedEvent(event, source: position, isValidated: true))
                batch.messages.append(message)
                batch.highestHLC = max(batch.highestHLC, event.hlc)
            case let .failure(record):
                batch.refused.append(record)
            }
        }
        return batch
    }

    /// Applies one decoded batch: dead-letter the refused records (acknowledged before their
    /// offsets are stored), apply the rest with all offsets in one transaction, dead-letter what
    /// the store refused, publish progress, commit to Kafka.
    private func apply(_ batch: DecodedBatch, consumer: KafkaConsumer, deadLetters: DeadLetterPublisher) async throws {
        let (events, refused) = (batch.events, batch.refused)
        if !refused.isEmpty {
            for record in refused {
                logger.warning("refused a record", metadata: ["source": "\(record.message.topicPartition)@\(record.message.offset)", "reason": .string(record.reason)])
            }
            try await deadLetters.publish(refused.map { DeadLetterPublisher.Letter(message: $0.message, reason: $0.reason) })
        }
        let outcome: BatchOutcome
        do {
            outcome = try await store.apply(
                batch: events, consumed: refused.map(\.message.sourcePosition) + batch.alreadyApplied)
        } catch is CancellationError {
            throw CancellationError()  // stopping: the transaction did not commit
        } catch {
            throw ApplierError.store("cannot apply a batch of \(events.count) events: \(error)")
        }
        settings.localApplyLedger?.applierCommitted(outcome.positions)
        if !outcome.failures.isEmpty {
            _ = try await deadLetters.publishStored(originals: batch.originals)
        }
        waiters.update { progress in
            for (partition, next) in outcome.positions {
                progress.appliedOffsets[partition] = max(progress.appliedOffsets[partition] ?? 0, next)
            }
            progress.eventsApplied += outcome.changed + outcome.unchanged + batch.alreadyApplied.count
            progress.eventsAppliedByWriter += batch.alreadyApplied.count
            progress.eventsSkipped += outcome.skipped
            progress.deadLetters += refused.count + outcome.failures.count
            progress.lastAppliedHLC = max(progress.lastAppliedHLC, batch.highestHLC)
        }
        if !outcome.positions.isEmpty {
            do {
                try consumer.commitAsync(outcome.positions.map { TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: KafkaOffset($0.value)) })
            } catch {
                logger.warning("cannot commit offsets to the apply group: \(error)")
            }
        }
    }

    /// Kafka says a position is no longer in the log: finds the partitions whose next offset is
    /// below the log start, reports the lost ranges loudly, and resumes them from the log start.
    private func reportLostEvents(_ consumer: KafkaConsumer, partitions: [TopicPartition], error: KafkaError) async {
        waiters.update { $0.lostEventReports += 1 }
        // Sharing partitions, a partition may have started from a position older than the
        // store's (see startPositions): the store's own position decides what is lost.
        if settings.sharesPartitions { await mergeStoredPositions() }
        let applied = progress.appliedOffsets
        var lost: [LostRange] = []
        for partition in partitions {
            let source = TopicPartition(topic: partition.topic, partition: partition.partition)
            guard let marks = try? await consumer.watermarks(topic: partition.topic, partition: partition.partition) else { continue }
            let next = applied[source] ?? 0
            if next < marks.low {
                lost.append(LostRange(partition: source, from: next, upTo: marks.low))
                do {
                    try await consumer.seek([TopicPartitionOffset(partition, offset: KafkaOffset(marks.low))])
                } catch {
                    logger.error("cannot resume \(partition) after lost events: \(error)")
                }
            }
        }
        logger.error(
            "EVENTS LOST: records were removed from the log before region \(region) applied them; the store misses them",
            metadata: ["error": "\(error)", "lost": "\(lost)"])
        waiters.update { $0.lostRanges += lost }
        if lost.isEmpty { try? await Task.sleep(for: .milliseconds(500)) }
    }
}
