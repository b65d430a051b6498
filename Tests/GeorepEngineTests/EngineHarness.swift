import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import Logging
import Testing

/// A logger for tests: warnings and worse.
func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A temporary directory removed after `body`.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("georep-engine-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// The example configuration with every region on `broker` and its store in `directory`.
func exampleConfig(broker: DevelopmentBroker, directory: URL, partitions: Int = 6) throws -> GeorepConfig {
    var config = try GeorepConfig.load(path: repositoryRoot.appendingPathComponent("schemas/examples/georep.yaml").path)
    config.partitions = partitions
    config.regions = config.regions.map { region in
        var region = region
        region.kafka = broker.bootstrapServers
        region.store = .sqlite(path: directory.appendingPathComponent("\(region.id).sqlite").path)
        return region
    }
    return config
}

/// A development broker with every region's change, pinned and dead-letter topics.
func withRegionsBroker<T>(regions: [String], partitions: Int = 6, _ body: (DevelopmentBroker) async throws -> T) async throws -> T {
    try await DevelopmentBroker.with(brokers: 1, logger: testLogger("dev-broker")) { broker in
        for region in regions {
            try broker.createTopic(Topics.changes(region), partitions: partitions)
            try broker.createTopic(Topics.pinned(region), partitions: partitions)
            try broker.createTopic(Topics.deadLetters(region), partitions: 1)
        }
        return try await body(broker)
    }
}

/// The example configuration's regions on one development broker, their stores in a
/// temporary directory.
func withExampleDeployment<T>(_ body: (GeorepConfig, DevelopmentBroker) async throws -> T) async throws -> T {
    try await withTemporaryDirectory { directory in
        try await withRegionsBroker(regions: ConvergenceTests.regions) { broker in
            try await body(try exampleConfig(broker: broker, directory: directory), broker)
        }
    }
}

/// One region's node parts: store, clock, writer and a running applier.
final class TestNode: Sendable {
    let region: String
    let config: GeorepConfig
    let store: any ReplicaStore
    let clock: HybridLogicalClock
    let producer: KafkaProducer
    let writer: Writer
    let applier: Applier
    /// The writer's local applies, which the applier does not merge again.
    let localApplyLedger = LocalApplyLedger()
    let applierTask: Task<Void, any Error>

    /// Opens the region's configured store (SQLite or PostgreSQL) and starts its applier.
    ///
    /// - Parameters:
    ///   - control: fence points and pauses shared by the writer and the applier.
    ///   - catchesUpAtStart: whether writes wait for ``Writer/catchUp(toOwnLogEnds:)``, as a node's do.
    init(region: String, config: GeorepConfig, control: ApplierControl? = nil, catchesUpAtStart: Bool = false) async throws {
        self.region = region
        self.config = config
        guard let location = config.region(id: region)?.store else { throw ApplierError.unknownRegion(region) }
        store = try await makeReplicaStore(at: location, config: config, logger: testLogger("store"))
        clock = HybridLogicalClock(maxOffsetMillis: config.hlcMaxOffsetMillis, floor: try await store.highWaterMark())
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: config.region(id: region)?.kafka ?? "")
        producerConfiguration.lingerMilliseconds = 2
        producer = try KafkaProducer(configuration: producerConfiguration, logger: testLogger("writer"))
        var settings = Applier.Settings()
        settings.localApplyLedger = localApplyLedger
        settings.control = control
        writer = Writer(region: region, config: config, store: store, clock: clock, producer: producer, epoch: 1,
                        localApplyLedger: settings.localApplyLedger, control: control, catchesUpAtStart: catchesUpAtStart,
                        logger: testLogger("writer"))
        applier = try Applier(region: region, config: config, store: store, clock: clock, settings: settings, logger: testLogger("applier.\(region)"))
        let applier = applier
        applierTask = Task { try await applier.run() }
    }

    /// Stops the applier after its batch, then closes the producer and the store.
    func shutdown() async throws {
        applierTask.cancel()
        try await applierTask.value
        await producer.close()
        try await store.close()
    }
}

/// Waits until every node has applied every position (pinned positions only at home).
func waitForReplication(_ nodes: [TestNode], positions: [SourcePosition], timeout: Duration = .seconds(90)) async {
    var last: [SourcePartition: SourcePosition] = [:]
    for position in positions where (last[position.partition]?.offset ?? -1) < position.offset {
        last[position.partition] = position
    }
    for node in nodes {
        for position in last.values {
            if position.partition.topic.hasSuffix(".pinned"), position.partition.topic != Topics.pinned(node.region) { continue }
            let reached = await node.applier.waitUntilApplied(past: position, timeout: timeout)
            #expect(reached, "\(node.region) did not apply \(position) within \(timeout)")
        }
    }
}

/// The end offset (last offset + 1) per partition that `receipts` reach.
func endOffsets(_ receipts: [WriteReceipt]) -> [SourcePartition: Int64] {
    var ends: [SourcePartition: Int64] = [:]
    for receipt in receipts { ends[receipt.position.partition] = max(ends[receipt.position.partition] ?? 0, receipt.position.offset + 1) }
    return ends
}

/// Reads every record of `topic` (partitions 0..<partitions) from the beginning.
func readTopic(_ topic: String, broker: DevelopmentBroker, partitions: Int = 1, count: Int, timeout: Duration = .seconds(30)) async throws -> [KafkaMessage] {
    let consumer = try KafkaConsumer(
        configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, groupID: "test-\(UUID().uuidString)"),
        logger: testLogger("reader"))
    try await consumer.assign((0..<partitions).map { TopicPartitionOffset(topic: topic, partition: Int32($0), offset: .beginning) })
    var messages: [KafkaMessage] = []
    let deadline = ContinuousClock.now + timeout
    while messages.count < count, ContinuousClock.now < deadline {
        messages += try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(100))
    }
    // Anything beyond `count` that is already there.
    messages += try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(300))
    await consumer.close()
    return messages
}
