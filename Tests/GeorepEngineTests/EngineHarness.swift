import GeorepLog
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

/// One region's engine on its store, its appliers running.
final class TestNode: Sendable {
    let region: String
    let config: GeorepConfig
    let store: any ReplicaStore
    let engine: RegionEngine
    let engineTask: Task<Void, any Error>

    var clock: HybridLogicalClock { engine.clock }
    var writer: Writer { engine.writer }
    var applier: Applier { engine.applier }

    /// Opens the region's configured store (SQLite or PostgreSQL) and starts its engine.
    ///
    /// - Parameters:
    ///   - catchesUpAtStart: whether writes wait for ``RegionEngine/catchUp(toOwnLogEnds:)``, as a node's do.
    ///   - paused: whether the applier starts paused (``RegionEngine/pause``).
    init(region: String, config: GeorepConfig, catchesUpAtStart: Bool = false, paused: Bool = false) async throws {
        self.region = region
        self.config = config
        guard let location = config.region(id: region)?.store else { throw ApplierError.unknownRegion(region) }
        store = try await makeReplicaStore(at: location, config: config, logger: testLogger("store"))
        var settings = RegionEngine.Settings()
        settings.catchesUpAtStart = catchesUpAtStart
        settings.followsDirectory = false
        engine = try await RegionEngine(
            region: region, config: config, store: store, epoch: 1, acceptsWrites: true, settings: settings, logger: testLogger("engine.\(region)"))
        if paused { engine.pause.pause(for: nil) }
        let engine = engine
        engineTask = Task { try await engine.run() }
    }

    /// Stops the applier after its batch, then closes the producer and the store.
    func shutdown() async throws {
        engineTask.cancel()
        try await engineTask.value
        await engine.close()
        try await store.close()
    }
}

/// Waits until every node has applied every position (pinned positions only at home).
func waitForReplication(_ nodes: [TestNode], positions: [SourcePosition], timeout: Duration = .seconds(90)) async {
    var last: [TopicPartition: SourcePosition] = [:]
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
func endOffsets(_ receipts: [WriteReceipt]) -> [TopicPartition: Int64] {
    var ends: [TopicPartition: Int64] = [:]
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
