import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import GeorepTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// An applier in a child process, SIGKILLed at random points and restarted, ends in the
/// same state as an uninterrupted region.
@Suite("Applier crashes", .serialized, .tags(.process), .startsProcesses)
struct CrashTests {
    /// The `georep` executable built beside the tests.
    static let executable = BuildProducts.georep

    @Test("SIGKILL five times while applying: the final state equals an uninterrupted region's")
    func killedApplierConverges() async throws {
        try await Self.killWhileApplying(postgres: nil)
    }

    /// Two applier processes of eu-west-1 share one PostgreSQL database and both apply every
    /// partition (the worst overlap a rebalance can make); one is SIGKILLed five times.
    @Test("Two appliers share a PostgreSQL store, one SIGKILLed five times: the final state equals an uninterrupted region's")
    func killedApplierBesideAnotherOnPostgreSQL() async throws {
        try await TestPostgres.withScratchDatabase { url in
            try await Self.killWhileApplying(postgres: url, steadyWorker: true)
        }
    }

    /// Writes to us-east-1 while eu-west-1's applier (in a child process, on SQLite or on the
    /// PostgreSQL database `postgres`) is killed and restarted, beside a `steadyWorker` that is
    /// not; then compares eu-west-1's carts with ap-southeast-1's.
    static func killWhileApplying(postgres: String?, steadyWorker: Bool = false) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build georep first (swift build --build-tests)")
        try await withTemporaryDirectory { directory in
            try await withRegionsBroker(regions: ConvergenceTests.regions) { broker in
                var config = try exampleConfig(broker: broker, directory: directory)
                var example = try String(contentsOf: repositoryRoot.appendingPathComponent("schemas/examples/georep.yaml"), encoding: .utf8)
                if let postgres {
                    example = example.replacingOccurrences(of: "sqlite:data/eu-west-1.sqlite", with: postgres)
                    for index in config.regions.indices where config.regions[index].id == "eu-west-1" {
                        config.regions[index].store = .postgres(url: postgres)
                    }
                }
                let configFile = directory.appendingPathComponent("georep.yaml")
                try example.replacingOccurrences(of: "127.0.0.1:9092", with: broker.bootstrapServers)
                    .replacingOccurrences(of: "sqlite:data/", with: "sqlite:\(directory.path)/")
                    .write(to: configFile, atomically: true, encoding: .utf8)
                let steady = steadyWorker ? try Self.startWorker(config: configFile, region: "eu-west-1") : nil
                let origin = try await TestNode(region: "us-east-1", config: config)
                let witness = try await TestNode(region: "ap-southeast-1", config: config)

                // Writes keep flowing while the child is killed and restarted.
                let writing = Task {
                    var receipts: [WriteReceipt] = []
                    var total: Int64 = 0
                    for index in 0..<1_500 {
                        let delta = Int64(index % 5) - 1
                        total += delta
                        let key: [String: JSONValue] = ["cart_id": .string("c-\(index % 4)")]
                        receipts.append(try await origin.writer.write(WriteRequest(table: "cart", key: key, operation: .increment(["views": delta]))))
                        if index % 3 == 0 {
                            receipts.append(try await origin.writer.write(WriteRequest(table: "cart", key: key, operation: .add(["items": [.string("sku-\(index % 50)")]]))))
                        }
                    }
                    return (receipts, total)
                }
                var rng = SystemRandomNumberGenerator()
                for _ in 0..<5 {
                    let child = try Self.startWorker(config: configFile, region: "eu-west-1")
                    try await Task.sleep(for: .milliseconds(Int.random(in: 300...1_200, using: &rng)))
                    kill(child.processIdentifier, SIGKILL)
                    child.waitUntilExit()
                    #expect(child.terminationReason == .uncaughtSignal)
                }
                let (receipts, total) = try await writing.value
                let child = try Self.startWorker(config: configFile, region: "eu-west-1")
                await waitForReplication([witness], positions: receipts.map(\.position))

                let location = try #require(config.region(id: "eu-west-1")?.store)
                let reader = try await makeReplicaStore(at: location, config: config, logger: testLogger("reader"))
                let ends = endOffsets(receipts)
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline {
                    let positions = try await reader.positions()
                    if ends.allSatisfy({ (positions[$0.key] ?? 0) >= $0.value }) { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                for worker in [child] + (steady.map { [$0] } ?? []) {
                    kill(worker.processIdentifier, SIGKILL)
                    worker.waitUntilExit()
                }

                let crashed = try await reader.snapshot(table: "cart")
                let uninterrupted = try await witness.store.snapshot(table: "cart")
                #expect(crashed.count == 4)
                #expect(crashed == uninterrupted)
                let views = crashed.compactMap { $0["views"]?.intValue }.reduce(0, +)
                #expect(views == total)
                try await reader.close()
                try await witness.shutdown()
                try await origin.shutdown()
            }
        }
    }

    static func startWorker(config: URL, region: String) throws -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["apply-worker", "--config", config.path, "--region", region]
        try process.run()
        return process
    }
}
