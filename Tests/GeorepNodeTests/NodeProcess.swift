import Foundation
import GeorepModel
import GeorepNode
import GeorepTestSupport
import GeorepTorture
import Synchronization
import Testing

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The `georep` executable built beside the test bundle.
let georepExecutable = BuildProducts.georep

/// A child `georep` process whose standard output is read line by line: the fault harness's
/// ``ChildProcess``, started from the executable built beside the test bundle.
typealias GeorepProcess = ChildProcess

extension ChildProcess {
    /// Starts `georep arguments...`, through `env launcher...` when given (e.g. `faketime`);
    /// its logs (standard error) are appended to `logFile` when given.
    convenience init(_ arguments: [String], launcher: [String] = [], logFile: URL? = nil) throws {
        try self.init(name: "georep \(arguments.first ?? "")", executable: georepExecutable.path, arguments: arguments, launcher: launcher, log: logFile)
    }
}

struct ProcessFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A deployment of `georep` processes: a development broker and one node per region of the
/// example configuration (schemas/examples/georep.yaml) with fresh ports and stores.
final class ProcessDeployment: Sendable {
    let directory: URL
    let configPath: String
    let config: GeorepConfig
    let broker: GeorepProcess
    let bootstrap: String
    /// The example configuration's node addresses (`127.0.0.1:8081`...) and the free ports used instead.
    let addressMap: [String: String]
    /// The node processes started so far, by name; tasks of a test start and read them concurrently.
    private let startedNodes = Mutex<[String: GeorepProcess]>([:])
    /// The node processes started so far, by name (the region, unless named otherwise).
    var nodes: [String: GeorepProcess] { startedNodes.withLock { $0 } }

    /// - Parameters:
    ///   - stores: store locations replacing a region's SQLite file (e.g. a PostgreSQL URL).
    ///   - extraTables: YAML of tables added to the example's, indented under `tables:`.
    init(topology: String = "active-active", extraYAML: String = "", extraTables: String = "", stores: [String: String] = [:]) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("georep-nodes-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var yaml = try String(contentsOf: repositoryRoot.appendingPathComponent("schemas/examples/georep.yaml"), encoding: .utf8)
        var addressMap: [String: String] = [:]
        for port in 8081...8083 {
            addressMap["127.0.0.1:\(port)"] = "127.0.0.1:\(try freeLoopbackPort())"
            yaml = yaml.replacingOccurrences(of: "127.0.0.1:\(port)", with: addressMap["127.0.0.1:\(port)"]!)
        }
        self.addressMap = addressMap
        for (region, store) in stores { yaml = yaml.replacingOccurrences(of: "sqlite:data/\(region).sqlite", with: store) }
        yaml = yaml.replacingOccurrences(of: "sqlite:data/", with: "sqlite:\(directory.path)/")
        yaml = yaml.replacingOccurrences(of: "topology: active-active", with: "topology: \(topology)\n\(extraYAML)") + extraTables
        configPath = directory.appendingPathComponent("georep.yaml").path
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        config = try GeorepConfig.load(path: configPath)
        broker = try GeorepProcess(["dev-broker", "--config", configPath, "--log-level", "warning"], logFile: directory.appendingPathComponent("broker.log"))
        bootstrap = try await broker.waitForLine(startingWith: "127.0.0.1")
    }

    /// Starts `region`'s node and waits until its HTTP API listens; `name` (default: the region)
    /// names the process and its log when a region has several.
    func start(_ region: String, name: String? = nil, arguments: [String] = [], launcher: [String] = [], logLevel: String = "notice") async throws {
        let name = name ?? region
        let node = try GeorepProcess(
            ["node", "--config", configPath, "--region", region, "--kafka", bootstrap, "--log-level", logLevel, "--admin"] + arguments,
            launcher: launcher, logFile: directory.appendingPathComponent("\(name).log"))
        startedNodes.withLock { $0[name] = node }
        _ = try await node.waitForLine(startingWith: "listening on")
    }

    func address(_ region: String) -> HostPort { config.region(id: region)!.http }

    /// The configuration with every region on the deployment's broker (as `--kafka` gives the nodes).
    var kafkaConfig: GeorepConfig { config.onOneCluster(bootstrap) }

    /// Runs `georep command ... --config <this deployment> --kafka <its broker>` to its end; returns
    /// its exit status and standard output.
    func run(_ command: [String], timeout: Duration = .seconds(120)) async throws -> (status: Int32, output: String) {
        let process = try GeorepProcess(
            command + ["--config", configPath, "--kafka", bootstrap], logFile: directory.appendingPathComponent("commands.log"))
        let status = await process.waitForExit(timeout: timeout)
        return (status, process.allLines.joined(separator: "\n"))
    }

    /// The log so far of the node process `name` (its region, unless named otherwise).
    func log(_ name: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
    }

    /// Runs `body` with a deployment (and every region's node started, unless `startingNodes`
    /// is false) and a client, then stops them all, also when `body` throws, before returning:
    /// no process outlives the test.
    static func with(
        topology: String = "active-active", extraYAML: String = "", extraTables: String = "", stores: [String: String] = [:], startingNodes: Bool = true,
        timeLimit: Duration = .seconds(240),
        _ body: @escaping @Sendable (ProcessDeployment, NodeHTTPClient) async throws -> Void
    ) async throws {
        let deployment = try await ProcessDeployment(topology: topology, extraYAML: extraYAML, extraTables: extraTables, stores: stores)
        let client = NodeHTTPClient(timeout: .seconds(20))
        // A watchdog: should the body ever wait forever, the test fails after `timeLimit`
        // and its processes still stop, instead of the whole run hanging.
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, any Error>, Never>) in
            let finish = FirstResult(continuation)
            let work = Task {
                do {
                    if startingNodes {
                        for region in deployment.config.regions.map(\.id) { try await deployment.start(region) }
                    }
                    try await body(deployment, client)
                    finish.resume(.success(()))
                } catch {
                    finish.resume(.failure(error))
                }
            }
            Task {
                try? await Task.sleep(for: timeLimit)
                work.cancel()
                finish.resume(.failure(ProcessFailure("the test did not finish within \(timeLimit); its processes' logs are in \(deployment.directory.path)")))
            }
        }
        try? await client.shutdown()
        await deployment.shutdown(keepingFiles: (try? result.get()) == nil)
        try result.get()
    }

    /// Stops every process; removes the directory unless `keepingFiles` (a failed test's logs).
    func shutdown(keepingFiles: Bool = false) async {
        for node in nodes.values { await node.stop() }
        await broker.stop()
        if !keepingFiles { try? FileManager.default.removeItem(at: directory) }
    }
}
