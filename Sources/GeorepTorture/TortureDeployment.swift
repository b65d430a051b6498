import Foundation
import GeorepEngine
import GeorepModel
import GeorepNode
import Synchronization

/// The harness's deployment: three regions, each with a development broker and a node, every
/// one its own `georep` process, so that each fails on its own.
final class TortureDeployment: Sendable {
    static let regions = LocalDeployment.regions
    let directory: URL
    let executable: String
    let config: GeorepConfig
    let configPath: String
    private let brokers: [String: ChildProcess]
    private let nodes = Mutex<[String: ChildProcess]>([:])

    /// Starts the brokers and writes the configuration; ``startNode(_:launcher:)`` starts nodes.
    init(directory: URL, executable: String, topology: Topology, partitions: Int, postgresURL: String?) async throws {
        self.directory = directory
        self.executable = executable
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func configuration(brokers: [String], ports: [UInt16]) -> String {
            LocalDeployment.configYAML(
                topology: topology.rawValue, brokers: brokers, ports: ports, directory: directory, partitions: partitions,
                stores: postgresURL.map { ["eu-west-1": $0] } ?? [:])
        }
        // The brokers' addresses are known once they run: which topics each holds comes from the
        // same configuration with each region's id standing for its cluster.
        let layout = try GeorepConfig.parse(yaml: configuration(brokers: Self.regions, ports: Self.regions.map { _ in 0 }))
        var brokers: [String: ChildProcess] = [:]
        var bootstraps: [String] = []
        for region in Self.regions {
            let topics = Topics.required(by: layout).filter { $0.cluster == region }.map { "\($0.name):\($0.partitions)" }
            let broker = try ChildProcess(
                name: "broker-\(region)", executable: executable,
                arguments: ["dev-broker", "--topics", topics.joined(separator: ","), "--commands", "--log-level", "warning"],
                log: directory.appendingPathComponent("broker-\(region).log"))
            brokers[region] = broker
            bootstraps.append(try await broker.waitForLine(startingWith: "127.0.0.1", timeout: .seconds(30)))
        }
        self.brokers = brokers
        let yaml = configuration(brokers: bootstraps, ports: try Self.regions.map { _ in try freeLoopbackPort() })
        configPath = directory.appendingPathComponent("georep.yaml").path
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        config = try GeorepConfig.load(path: configPath)
    }

    func address(_ region: String) -> HostPort { config.region(id: region)!.http }

    /// Starts `region`'s node (through `launcher`, e.g. faketime) and waits until it listens.
    func startNode(_ region: String, launcher: [String] = []) async throws {
        let node = try ChildProcess(
            name: "node-\(region)", executable: executable,
            arguments: ["node", "--config", configPath, "--region", region, "--admin", "--log-level", "notice"],
            launcher: launcher, log: directory.appendingPathComponent("node-\(region).log"))
        nodes.withLock { $0[region] = node }
        _ = try await node.waitForLine(startingWith: "listening on", timeout: .seconds(60))
    }

    /// Sends `signal` to `region`'s node.
    func signalNode(_ region: String, _ signal: Int32) {
        nodes.withLock { $0[region] }?.signal(signal)
    }

    /// Stops `region`'s node: SIGKILL (a crash) or SIGTERM (a graceful stop).
    func stopNode(_ region: String, signal: Int32) async {
        await nodes.withLock { $0[region] }?.stop(signal: signal, timeout: .seconds(15))
    }

    /// Whether `region`'s node process runs.
    func isNodeRunning(_ region: String) -> Bool {
        nodes.withLock { $0[region] }?.isRunning ?? false
    }

    /// Sends a fault command to `region`'s broker (see `georep dev-broker --commands`).
    func brokerCommand(_ region: String, _ command: String) async throws {
        guard let broker = brokers[region] else { return }
        let answer = try await broker.command(command)
        guard answer == "ok" else { throw TortureError("broker of \(region): '\(command)' answered '\(answer)'") }
    }

    /// Runs `georep ARGUMENTS --config <this deployment>` to its end; its exit status and output.
    func run(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> (status: Int32, output: String) {
        let command = try ChildProcess(
            name: arguments.first ?? "command", executable: executable, arguments: arguments + ["--config", configPath],
            log: directory.appendingPathComponent("commands.log"))
        let status = await command.waitForExit(timeout: timeout)
        return (status, command.allLines.joined(separator: "\n"))
    }

    /// Stops every node, then the brokers.
    func shutdown() async {
        for node in nodes.withLock({ Array($0.values) }) { await node.stop(signal: SIGKILL, timeout: .seconds(5)) }
        for broker in brokers.values { await broker.stop(timeout: .seconds(10)) }
    }
}
