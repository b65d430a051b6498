import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepNode
import GeorepStore
import Logging
import Synchronization
import Testing

/// What a node knows of its role right after a restart, before and while it reads `georep.control`.
@Suite("node role at restart", .serialized)
struct NodeRestartRoleTests {
    static func logger() -> Logger {
        var logger = Logger(label: "test.restart")
        logger.logLevel = .warning
        return logger
    }

    /// The example configuration as single-primary with us-east-1 primary, on `broker`, its stores in `directory`.
    static func config(broker: DevelopmentBroker, directory: URL) throws -> GeorepConfig {
        var config = try InProcessNode.exampleDeployment(on: broker, directory: directory)
        config.topology = .singlePrimary
        config.primary = "us-east-1"
        return config
    }

    static func withBroker(_ body: (DevelopmentBroker, URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("georep-restart-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await DevelopmentBroker.with(brokers: 1, logger: logger()) { broker in
            try await body(broker, directory)
        }
    }

    @Test("an old primary restarted after a failover starts with the role its store recorded, not the configuration's")
    func storedRoleAtStart() async throws {
        try await Self.withBroker { broker, directory in
            let config = try Self.config(broker: broker, directory: directory)
            // What the node had recorded before it stopped: eu-west-1 promoted at epoch 2.
            guard case let .sqlite(path) = config.region(id: "us-east-1")?.store else { throw CancellationError() }
            let store = try SQLiteStore(path: path, config: config)
            try await store.saveRegionConfigs(config.regions.map { region in
                RegionConfigRecord(regionID: region.id, kafka: region.kafka, http: region.http.description, isPrimary: region.id == "eu-west-1",
                                   isAcceptingWrites: region.id == "eu-west-1", epoch: 2)
            })
            try await store.close()

            var settings = RegionNode.Settings()
            settings.followsControlTopic = false  // as if the control topic were unreachable
            let node = try await RegionNode(config: config, region: "us-east-1", settings: settings, logger: Self.logger())
            #expect(node.role == NodeRole(primary: "eu-west-1", epoch: 2, acceptsWrites: false))
            let run = Task { try await node.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while node.listenAddress == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(node.role.acceptsWrites == false)
            await node.shutdown()
            try await run.value
        }
    }

    @Test("after catching up at start, following the control topic does not replay the records it read")
    func noReplayAfterCatchUp() async throws {
        try await Self.withBroker { broker, directory in
            let config = try Self.config(broker: broker, directory: directory)
            let log = ControlLog(config: config, logger: Self.logger())
            let primary = try #require(config.region(id: "us-east-1"))
            // A drain in progress: the primary stopped taking writes at epoch 1.
            try await log.publish([
                RegionControlRecord(region: primary, isPrimary: true, isAcceptingWrites: true, epoch: 1),
                RegionControlRecord(region: primary, isPrimary: true, isAcceptingWrites: false, epoch: 1),
            ])
            let seen = Mutex<[ControlState]>([])
            let reader = ControlReader(log: log, region: "us-east-1", logger: Self.logger()) { state in seen.withLock { $0.append(state) } }
            await reader.catchUp(timeout: .seconds(10))
            #expect(seen.withLock { $0.count } == 1)
            #expect(reader.current.role(of: "us-east-1", config: config).acceptsWrites == false)
            let run = Task { await reader.run() }
            try await Task.sleep(for: .seconds(1))
            let afterCatchUp = seen.withLock { $0.count }
            #expect(afterCatchUp == 1, "the reader handed the node \(afterCatchUp - 1) states again after catching up")
            // A record appended later is followed.
            try await log.publish([RegionControlRecord(region: primary, isPrimary: true, isAcceptingWrites: true, epoch: 1)])
            let deadline = ContinuousClock.now + .seconds(10)
            while seen.withLock({ $0.count }) < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(seen.withLock { $0.last?.role(of: "us-east-1", config: config).acceptsWrites } == true)
            run.cancel()
            await run.value
        }
    }
}
