public import Foundation
import GeorepEngine
public import GeorepKafka
public import GeorepModel
public import Logging

/// A development deployment in one process: one development broker (librdkafka's mock cluster)
/// per region with an added round-trip time, a configuration file in a directory, and the three
/// regions' nodes on SQLite files, each with its HTTP API on a free loopback port. `georep demo`,
/// benchmarks and tests run on it.
public final class LocalDeployment: Sendable {
    /// The regions, as in the example configuration `schemas/examples/georep.yaml`.
    public static let regions = ["us-east-1", "eu-west-1", "ap-southeast-1"]

    /// Where the configuration and the stores are.
    public let directory: URL
    /// The configuration the nodes run with.
    public let config: GeorepConfig
    /// The configuration file.
    public let configPath: String
    /// Each region's development broker.
    public let brokers: [String: DevelopmentBroker]
    /// Each region's node.
    public let nodes: [String: RegionNode]
    private let runs: [Task<Void, any Error>]

    /// Starts brokers and nodes; `roundTripMillis` is added to every request to every cluster
    /// (the mock cluster cannot tell clients apart, so a region's own writes pay it too).
    ///
    /// - Parameters:
    ///   - topology: `active-active` or `single-primary` (with the first region as primary).
    public init(
        directory: URL, roundTripMillis: Int, partitions: Int = GeorepConfig.defaultPartitions, topology: Topology = .activeActive,
        settings: RegionNode.Settings = RegionNode.Settings(), logger: Logger
    ) async throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var brokers: [String: DevelopmentBroker] = [:]
        for region in Self.regions {
            let broker = try DevelopmentBroker(brokers: 1, logger: logger)
            if roundTripMillis > 0 { try broker.setRoundTripTime(roundTripMillis, broker: 1) }
            brokers[region] = broker
        }
        self.brokers = brokers
        let ports = try Self.regions.map { _ in try freeLoopbackPort() }
        let yaml = Self.configYAML(
            topology: topology.rawValue, brokers: Self.regions.map { brokers[$0]!.bootstrapServers }, ports: ports,
            directory: directory, partitions: partitions)
        configPath = directory.appendingPathComponent("georep.yaml").path
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        config = try GeorepConfig.load(path: configPath)
        for topic in Topics.required(by: config) {
            try brokers.values.first { $0.bootstrapServers == topic.cluster }?.createTopic(topic.name, partitions: topic.partitions)
        }
        var nodes: [String: RegionNode] = [:]
        var runs: [Task<Void, any Error>] = []
        for region in Self.regions {
            var nodeLogger = logger
            nodeLogger[metadataKey: "region"] = .string(region)
            let node = try await RegionNode(config: config, region: region, settings: settings, logger: nodeLogger)
            nodes[region] = node
            runs.append(Task { try await node.run() })
        }
        self.nodes = nodes
        self.runs = runs
        for region in Self.regions { try await waitUntilListening(region) }
    }

    /// The HTTP address of `region`'s node.
    public func address(_ region: String) -> HostPort { config.region(id: region)!.http }

    private func waitUntilListening(_ region: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while nodes[region]?.listenAddress == nil {
            guard ContinuousClock.now < deadline else { throw DeploymentError("the node of \(region) did not start listening within 30 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Stops every node in order and then the brokers.
    public func shutdown() async {
        for node in nodes.values { await node.shutdown() }
        for run in runs { _ = try? await run.value }
        for broker in brokers.values { await broker.shutdown() }
    }

    /// The demo's configuration file: the example's three tables and three regions, each on
    /// its own broker, their SQLite stores in `directory` unless `stores` names another (a
    /// `postgres://` URL) for a region.
    public static func configYAML(
        topology: String, brokers: [String], ports: [UInt16], directory: URL, partitions: Int, stores: [String: String] = [:]
    ) -> String {
        var text = """
            # Written by georep's local deployment: three regions, each with its own development broker.
            topology: \(topology)
            \(topology == "single-primary" ? "primary: \(regions[0])\n" : "")partitions: \(partitions)
            regions:

            """
        for (index, region) in regions.enumerated() {
            text += """
                  - id: \(region)
                    kafka: \(brokers[index])
                    http: 127.0.0.1:\(ports[index])
                    store: \(stores[region] ?? "sqlite:" + directory.appendingPathComponent("\(region).sqlite").path)

                """
        }
        text += """
            tables:
              user_profile:
                key: [user_id]
                merge: lww
                columns: {user_id: integer, display_name: text, bio: text}
              cart:
                key: [cart_id]
                merge: lww-columns
                columns: {cart_id: text, items: gset, saved: orset, views: counter, note: text}
              user_pii:
                key: [user_id]
                merge: pinned
                columns: {user_id: integer, home_region: text, email: text}

            """
        return text
    }
}

/// A local deployment could not start.
struct DeploymentError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
