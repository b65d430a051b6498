import Foundation
import GeorepModel
import GeorepNode
import Logging
import Synchronization

/// The demo's planned switchover: a second deployment in `single-primary` topology with
/// us-east-1 as primary, a continuous write load through ap-southeast-1 (which forwards writes
/// to the primary), `georep failover --to eu-west-1` in the middle of it, and the check that
/// every acknowledged write is in every region afterwards.
struct DemoSwitchover {
    let directory: URL
    let roundTripMillis: Int
    let partitions: Int
    let logger: Logger

    /// Runs the phase; returns whether every region holds every acknowledged write and the
    /// regions' tables are identical.
    func run() async throws -> Bool {
        let deployment = try await LocalDeployment(
            directory: directory, roundTripMillis: roundTripMillis, partitions: partitions, topology: .singlePrimary, logger: logger)
        let client = NodeHTTPClient()
        defer { Task { try? await client.shutdown(); await deployment.shutdown() } }
        print("   single-primary deployment, primary us-east-1; writes go to ap-southeast-1, which forwards them")
        let acknowledged = Mutex<[(id: Int, region: String)]>([])
        let stopped = Atomic<Bool>(false)
        let refusals = Atomic<Int>(0)
        let load = Task {
            var id = 1
            while !stopped.load(ordering: .relaxed) {
                let reply = try? await client.send(
                    "PUT", deployment.address("ap-southeast-1"), NodeHTTPClient.rowPath("user_profile", "\(id)"), json: ["display_name": .string("s\(id)")])
                if let reply, reply.status == 200 {
                    acknowledged.withLock { $0.append((id, reply.json?.objectValue?["region"]?.stringValue ?? "?")) }
                    id += 1
                } else {
                    refusals.add(1, ordering: .relaxed)
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        try await Task.sleep(for: .seconds(2))
        print("   georep failover --to eu-west-1 (planned switchover) under load:")
        var options = Failover.Options(target: "eu-west-1")
        options.maxDataLossMillis = 0
        let outcome = try await Failover(config: deployment.config, options: options, http: client, logger: logger) { print("  \($0)") }.run()
        try await Task.sleep(for: .seconds(2))
        stopped.store(true, ordering: .relaxed)
        await load.value
        let writes = acknowledged.withLock { $0 }
        let byRegion = Dictionary(grouping: writes, by: \.region).mapValues(\.count)
        print("   \(outcome.isPlanned ? "planned switchover" : "failover") to eu-west-1 at epoch \(outcome.epoch): RTO (writes refused) \(String(format: "%.1f", (outcome.writeOutage ?? outcome.total).fractionalSeconds * 1000)) ms")
        print("   acknowledged writes: \(writes.count) (\(byRegion.sorted { $0.key < $1.key }.map { "\($0.value) by \($0.key)" }.joined(separator: ", "))), \(refusals.load(ordering: .relaxed)) refused and retried during the switch")

        var complete = true
        for region in LocalDeployment.regions {
            let deadline = ContinuousClock.now + .seconds(60)
            var rows: [[String: JSONValue]] = []
            repeat {
                rows = try await deployment.nodes[region]!.store.snapshot(table: "user_profile")
                if rows.count >= writes.count { break }
                try await Task.sleep(for: .milliseconds(200))
            } while ContinuousClock.now < deadline
            let ids = Set(rows.compactMap { $0["user_id"]?.intValue })
            let missing = writes.filter { !ids.contains(Int64($0.id)) }
            complete = complete && missing.isEmpty
            print("   \(region): \(missing.isEmpty ? "holds every acknowledged write" : "MISSES \(missing.count) acknowledged writes")")
        }
        var snapshots: [[[String: JSONValue]]] = []
        for region in LocalDeployment.regions { snapshots.append(try await deployment.nodes[region]!.store.snapshot(table: "user_profile")) }
        let identical = snapshots.dropFirst().allSatisfy { $0 == snapshots[0] }
        print("   user_profile: \(identical ? "identical in all regions" : "DIFFERENT between regions")")
        return complete && identical
    }
}
