import GeorepLog
import ArgumentParser
import Foundation
import GeorepCommandSupport
import GeorepEngine
import GeorepModel
import GeorepNode
import Logging

/// `georep demo`: the main job on embedded defaults (`README.md#on-a-fresh-debian-machine`).
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run three regions on development brokers with a mixed workload and check that they converge.",
        discussion: """
            Starts one development broker (librdkafka's mock cluster) per region with an added round \
            trip, and three region nodes (us-east-1, eu-west-1, ap-southeast-1) on SQLite files in a \
            fresh directory. Writes a mixed workload through the nodes' HTTP APIs, shows progress, then \
            a read-your-writes read across regions and a region-pinned row read from another region, \
            the lag table (as georep lag prints it), a summary, and then a planned switchover under \
            load on a second, single-primary deployment with its RTO. Exit status 0 only if every \
            region converged in both.
            """
    )

    @Option(help: "Seconds of mixed workload.")
    var duration: Int = 15

    @Option(help: "Writes per second sent to each region's node.")
    var rate: Int = 100

    @Option(help: "Round-trip time in milliseconds added by every region's broker, imitating cross-region distance.")
    var rttMs: Int = 40

    @Option(help: "Partitions of each change topic.")
    var partitions: Int = GeorepConfig.defaultPartitions

    @Option(help: "Directory for the configuration and the SQLite stores (default: a new one under the temporary directory).")
    var directory: String?

    @Flag(help: "Keep the directory afterwards.")
    var keep = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard duration > 0, rate > 0, rttMs >= 0, partitions > 0 else {
            throw ValidationError("duration, rate and partitions must be positive and rtt-ms not negative")
        }
    }

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.demo", defaultLevel: .warning)
        let folder = directory.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("georep-demo-\(UUID().uuidString.prefix(8))")
        print("georep demo: 3 regions, \(rate) writes/s per region for \(duration) s, \(rttMs) ms added round trip per cluster")
        print("  files in \(folder.path)")
        let deployment = try await LocalDeployment(directory: folder, roundTripMillis: rttMs, partitions: partitions, logger: logger)
        let client = NodeHTTPClient()
        var converged = false
        var shutDown = false
        do {
            for region in LocalDeployment.regions {
                print("  \(region): node http://\(deployment.address(region)), Kafka \(deployment.config.region(id: region)!.kafka)")
            }
            print("\n1. Mixed workload (profile edits with same-key conflicts, cart G-Set adds, OR-Set saves, counters, deletes)")
            let lags = LagRecorder()
            let workload = DemoWorkload(deployment: deployment, client: client, rate: rate, lags: lags)
            await workload.run(duration: .seconds(duration))
            let outcome = workload.result
            print("   waiting for every region to apply every write...")
            try await waitForReplication(deployment, outcome: outcome)
            await lags.drain()

            print("\n2. Read-your-writes across regions, and a region-pinned row")
            try await DemoShowcase(deployment: deployment, client: client).run()

            print("\n3. Replication lag (georep lag)")
            let http = NodeHTTPClient(timeout: .seconds(3))
            let report = await LagReport.collect(config: deployment.config, http: http, logger: logger)
            try? await http.shutdown()
            print(report.table.split(separator: "\n").map { "   \($0)" }.joined(separator: "\n"))

            print("\n4. Summary")
            converged = try await DemoReport(deployment: deployment, outcome: outcome, lags: lags).print()
            await deployment.shutdown()
            shutDown = true

            print("\n5. Planned switchover under load")
            let switched = try await DemoSwitchover(
                directory: folder.appendingPathComponent("switchover"), roundTripMillis: rttMs, partitions: partitions, logger: logger).run()
            print(switched ? "   switchover: no acknowledged write lost, all regions converged" : "   switchover: REGIONS DID NOT CONVERGE")
            converged = converged && switched
        } catch {
            print("demo failed: \(error)")
        }
        try? await client.shutdown()
        if !shutDown { await deployment.shutdown() }
        if !keep && directory == nil { try? FileManager.default.removeItem(at: folder) }
        guard converged else { throw ExitCode(1) }
    }

    private func waitForReplication(_ deployment: LocalDeployment, outcome: DemoWorkload.Outcome) async throws {
        for region in LocalDeployment.regions {
            let applier = deployment.nodes[region]!.engine.applier
            for (partition, offset) in outcome.written_positions {
                let position = SourcePosition(topic: partition.topic, partition: partition.partition, offset: offset)
                guard await applier.waitUntilApplied(past: position, timeout: .seconds(120)) else {
                    throw DemoError("\(region) did not apply \(position) within 120 s")
                }
            }
        }
    }
}
