import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepNode
import GeorepTestSupport
import Logging
import Synchronization
import Testing

/// Lag monitoring, `georep lag` and `georep failover` against `georep node` and `georep
/// dev-broker` processes (issue 6).
@Suite("lag and failover processes", .serialized, .tags(.process), .startsProcesses)
struct FailoverProcessTests {
    static let primaryYAML = "primary: us-east-1"

    @Test("an applier paused under load: georep lag and /metrics show a growing lag for that region only, its log warns, and the lag returns to 0 after it resumes, also after a 3 s pause")
    func pausedApplierShowsLag() async throws {
        try await ProcessDeployment.with { deployment, client in
            let load = Load(client: client, address: deployment.address("us-east-1"))
            let writing = Task { await load.run(idOffset: 0) }
            let eu = deployment.address("eu-west-1")

            // Paused until resumed, so that a busy machine cannot end the pause before two samples.
            // The report is the one `georep lag` prints, collected in this process.
            try await Task.sleep(for: .milliseconds(500))
            let paused = try await client.send("POST", eu, "/v1/admin/applier/pause")
            #expect(paused.status == 200 && paused.json?.objectValue?["applier_paused"] == .bool(true))
            var samples: [(report: LagReport, metric: (records: Double, millis: Double))] = []
            let deadline = ContinuousClock.now + .seconds(30)
            repeat {
                try await Task.sleep(for: .milliseconds(400))
                let report = await LagReport.collect(config: deployment.kafkaConfig, http: client, logger: Logger(label: "test"))
                samples.append((report, try await lagMetric(client, eu, source: "us-east-1")))
            } while ContinuousClock.now < deadline
                && (samples.count < 3 || samples.last!.metric.millis < 1000 || euLagMillis(samples.last!.report) < 1000)
            let first = samples[samples.count - 2]
            let second = samples[samples.count - 1]
            let euFirst = first.report.lagRecords(source: "us-east-1", target: "eu-west-1")
            let euSecond = second.report.lagRecords(source: "us-east-1", target: "eu-west-1")
            #expect(euFirst > 0 && euSecond > euFirst, "georep lag shows eu-west-1's lag growing: \(euFirst) then \(euSecond)")
            #expect(second.metric.records > first.metric.records && second.metric.millis > first.metric.millis && second.metric.millis >= 1000,
                    "/metrics shows it growing: \(first.metric) then \(second.metric)")
            let euMillis = euLagMillis(second.report)
            #expect(euMillis >= 1000, "the lag in ms is the age of the oldest unapplied event: \(euMillis)")
            for target in ["us-east-1", "ap-southeast-1"] {
                let records = second.report.rows.filter { $0.target == target }.compactMap(\.lagRecords).reduce(0, +)
                #expect(records < euSecond / 2, "\(target) does not lag like eu-west-1: \(records) records")
                let metric = try await lagMetric(client, deployment.address(target), source: "us-east-1")
                #expect(metric.records < second.metric.records / 2, "\(target)'s /metrics show no such lag: \(metric)")
            }
            _ = try await client.send("POST", eu, "/v1/admin/applier/resume")
            try await waitForZeroLag(deployment)

            // A pause of 3 s ends by itself.
            let timed = try await client.send("POST", eu, "/v1/admin/applier/pause?seconds=3")
            #expect(timed.json?.objectValue?["applier_paused"] == .bool(true))
            try await Task.sleep(for: .seconds(3))
            let later = try await client.send("GET", eu, "/v1/admin")
            #expect(later.json?.objectValue?["applier_paused"] == .bool(false), "the applier resumed after 3 s")

            load.stop()
            await writing.value
            #expect(load.acknowledged.count > 20, "the load wrote (\(load.acknowledged.count) writes)")
            try await waitForZeroLag(deployment)
            let log = deployment.log("eu-west-1")
            #expect(log.contains("warning") && log.contains("replication from us-east-1 is"), "eu-west-1's log warns of the lag")
            let table = try await deployment.run(["lag"])
            #expect(table.status == 0 && table.output.contains("LAG_RECORDS") && table.output.contains("georep.us-east-1.changes"), "georep lag prints a table:\n\(table.output)")
        }
    }

    @Test("a planned switchover under continuous writes loses no acknowledged write; every region converges; the old primary then forwards writes to the new one; switching back works the same way")
    func plannedSwitchover() async throws {
        try await ProcessDeployment.with(topology: "single-primary", extraYAML: Self.primaryYAML) { deployment, client in
            let regions = deployment.config.regions.map(\.id)
            // Writes go to ap-southeast-1, which forwards them to whichever region is primary.
            let load = Load(client: client, address: deployment.address("ap-southeast-1"))
            let writing = Task { await load.run(idOffset: 0) }
            try await Task.sleep(for: .seconds(1))
            let failover = try await deployment.run(["failover", "--to", "eu-west-1"])
            try await Task.sleep(for: .seconds(1))
            load.stop()
            await writing.value
            #expect(failover.status == 0, "georep failover succeeds:\n\(failover.output)")
            #expect(failover.output.contains("planned switchover") && failover.output.contains("writes refused (RTO)"), "\(failover.output)")
            print("planned switchover:\n\(failover.output)")
            let acknowledged = load.acknowledged
            #expect(acknowledged.count > 5, "writes were acknowledged before and after the switch (\(acknowledged.count))")
            #expect(load.acknowledgedBy.contains("eu-west-1") && load.acknowledgedBy.contains("us-east-1"), "both primaries took writes: \(load.acknowledgedBy)")

            for region in regions {
                try await expectRows(client, deployment.address(region), acknowledged, present: true, region: region)
            }
            // The old primary is a replica like any other: it forwards writes to the new primary.
            let forwarded = try await client.send("PUT", deployment.address("us-east-1"), NodeHTTPClient.rowPath("user_profile", "1"), json: ["bio": "via the old primary"])
            #expect(forwarded.status == 200 && forwarded.headers["georep-routed-to"] == "eu-west-1" && forwarded.token?.hasPrefix("eu-west-1:") == true,
                    "the old primary forwards to the new one: \(forwarded.status) \(forwarded.error ?? "") \(forwarded.headers)")
            let status = try await client.send("GET", deployment.address("eu-west-1"), "/v1/status")
            #expect(status.json?.objectValue?["primary"] == .string("eu-west-1") && status.json?.objectValue?["epoch"] == .int(2))
            let oldStatus = try await client.send("GET", deployment.address("us-east-1"), "/v1/status")
            #expect(oldStatus.json?.objectValue?["fenced"] == .bool(false), "\(oldStatus.json?.jsonText ?? "")")

            // Switching back works the same way.
            let back = try await deployment.run(["failover", "--to", "us-east-1"])
            #expect(back.status == 0 && back.output.contains("planned switchover"), "\(back.output)")
            let home = try await client.send("PUT", deployment.address("us-east-1"), NodeHTTPClient.rowPath("user_profile", "2"), json: ["bio": "home again"])
            #expect(home.status == 200 && home.headers["georep-routed-to"] == nil && home.token?.hasPrefix("us-east-1:") == true, "\(home.status) \(home.error ?? "")")
            let viaEU = try await client.send("PUT", deployment.address("eu-west-1"), NodeHTTPClient.rowPath("user_profile", "3"), json: ["bio": "via eu"])
            #expect(viaEU.status == 200 && viaEU.headers["georep-routed-to"] == "us-east-1", "\(viaEU.status) \(viaEU.error ?? "")")
            for region in regions {
                try await expectRows(client, deployment.address(region), acknowledged, present: true, region: region)
            }
            for (id, bio) in [(1, "via the old primary"), (2, "home again"), (3, "via eu")] {
                let bodies = try await ClockSkewTests.converged(deployment, client, NodeHTTPClient.rowPath("user_profile", "\(id)"))
                #expect(Set(bodies.values).count == 1 && bodies.values.first?.contains(bio) == true, "\(bodies)")
            }
            let dead = try await deadLetters(deployment)
            #expect(dead.isEmpty, "a planned switchover fences nothing: \(dead)")
        }
    }

    @Test("split brain: an old primary cut off from georep.control keeps taking writes after the failover; none of them reaches any region's tables, each is dead-lettered, and it then forwards writes to the new primary",
          arguments: ["sqlite", "postgres"])
    func splitBrain(oldPrimaryStore: String) async throws {
        try await Self.withStores(usEast1: oldPrimaryStore) { stores in
            try await runSplitBrain(stores: stores)
        }
    }

    /// Runs `body` with the `stores` argument of a deployment whose us-east-1 keeps its rows in
    /// `kind` (sqlite: the default file; postgres: a scratch database).
    private static func withStores(usEast1 kind: String, _ body: ([String: String]) async throws -> Void) async throws {
        if kind == "postgres" {
            try await TestPostgres.withScratchDatabase { url in try await body(["us-east-1": url]) }
        } else {
            try await body([:])
        }
    }

    private func runSplitBrain(stores: [String: String]) async throws {
        try await ProcessDeployment.with(topology: "single-primary", extraYAML: Self.primaryYAML, stores: stores) { deployment, client in
            let regions = deployment.config.regions.map(\.id)
            let old = deployment.address("us-east-1")
            for id in 1...5 {
                let reply = try await client.send("PUT", old, NodeHTTPClient.rowPath("user_profile", "\(id)"), json: ["display_name": .string("before")])
                #expect(reply.status == 200)
            }
            let cut = try await client.send("POST", old, "/v1/admin/control/pause")
            #expect(cut.json?.objectValue?["control_paused"] == .bool(true))

            let failover = try await deployment.run(["failover", "--to", "eu-west-1"])
            #expect(failover.status == 0, "\(failover.output)")
            #expect(failover.output.contains("unplanned failover"), "the old primary did not confirm the drain:\n\(failover.output)")

            // The cut-off old primary still believes it is primary.
            var fenced: [Int] = []
            for id in 1001...1010 {
                let reply = try await client.send("PUT", old, NodeHTTPClient.rowPath("user_profile", "\(id)"), json: ["display_name": .string("split")])
                #expect(reply.status == 200, "the cut-off old primary keeps accepting writes: \(reply.status) \(reply.error ?? "")")
                if reply.status == 200 { fenced.append(id) }
            }
            let newWrite = try await client.send("PUT", deployment.address("eu-west-1"), NodeHTTPClient.rowPath("user_profile", "2000"), json: ["display_name": "new"])
            #expect(newWrite.status == 200)

            _ = try await client.send("POST", old, "/v1/admin/control/resume")
            // Once reconnected it learns the fence, rebuilds the rows it wrote past it (refusing
            // writes meanwhile, naming the new primary), then forwards writes as a replica.
            let deadline = ContinuousClock.now + .seconds(20)
            var id = 3000
            var answers: [String] = []
            while ContinuousClock.now < deadline {
                id += 1
                let reply = try await client.send("PUT", old, NodeHTTPClient.rowPath("user_profile", "\(id)"), json: ["display_name": "late"])
                let routedTo = reply.headers["georep-routed-to"]
                answers.append("\(reply.status)\(routedTo.map { "→\($0)" } ?? "")")
                if reply.status == 200, routedTo == "eu-west-1" { break }
                if reply.status == 200 { fenced.append(id) }  // taken before it learned the fence
                #expect(reply.status == 200 || reply.status == 409 && (reply.error ?? "").contains("eu-west-1"), "\(reply.status) \(reply.error ?? "")")
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(answers.last == "200→eu-west-1", "once reconnected and rebuilt it forwards to the new primary: \(answers)")

            // Let every applier reach the fenced events, then check.
            try await Task.sleep(for: .seconds(3))
            for region in regions {
                try await expectRows(client, deployment.address(region), [.init(id: 2000, name: "new", region: "eu-west-1")], present: true, region: region)
                try await expectRows(client, deployment.address(region), (1...5).map { .init(id: $0, name: "before", region: "us-east-1") }, present: true, region: region)
                try await expectRows(client, deployment.address(region), fenced.map { .init(id: $0, name: "split", region: "us-east-1") }, present: false, region: region)
            }
            let dead = try await deadLetters(deployment)
            for region in ["eu-west-1", "ap-southeast-1"] {
                let keys = Set(dead.filter { $0.region == region && $0.reason.hasPrefix("fenced") }.map(\.key))
                for id in fenced {
                    #expect(keys.contains("user_profile/\(id)"), "\(region)'s dead-letter topic holds fenced write \(id)")
                }
            }

            // Restarted, the old primary reads the fence from georep.control before serving.
            #expect(await deployment.nodes["us-east-1"]!.stop() == 0)
            try await deployment.start("us-east-1")
            let afterRestart = try await client.send("PUT", old, NodeHTTPClient.rowPath("user_profile", "4000"), json: ["display_name": "late"])
            #expect(afterRestart.status == 200 && afterRestart.headers["georep-routed-to"] == "eu-west-1", "forwarded after a restart too: \(afterRestart.status) \(afterRestart.error ?? "")")
            try await expectRows(client, old, fenced.map { .init(id: $0, name: "split", region: "us-east-1") }, present: false, region: "us-east-1 after a restart")
            // The store remembers the rebuild: the restart does not rebuild (and briefly remove) the rows again.
            let skipped = "the rows written past the fence point were rebuilt before; not again"
            let logDeadline = ContinuousClock.now + .seconds(10)
            while !deployment.log("us-east-1").contains(skipped), ContinuousClock.now < logDeadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            let log = deployment.log("us-east-1")
            #expect(log.contains(skipped), "the restarted old primary did not find its rebuild recorded")
            #expect(log.components(separatedBy: "rebuilt the rows written past the fence point").count - 1 == 1, "rebuilt more than once")
        }
    }

    @Test("an unplanned failover to a lagging target is refused with the measured lag; --force promotes and lists the unapplied offsets")
    func unplannedFailoverChecksLag() async throws {
        try await ProcessDeployment.with(topology: "single-primary", extraYAML: Self.primaryYAML) { deployment, client in
            _ = try await client.send("POST", deployment.address("eu-west-1"), "/v1/admin/applier/pause")
            for id in 1...12 {
                let reply = try await client.send("PUT", deployment.address("us-east-1"), NodeHTTPClient.rowPath("user_profile", "\(id)"), json: ["display_name": "x"])
                #expect(reply.status == 200)
            }
            let status = await deployment.nodes["us-east-1"]!.stop()
            #expect(status == 0)
            try await Task.sleep(for: .seconds(2))

            let refused = try await deployment.run(["failover", "--to", "eu-west-1", "--max-data-loss-ms", "500"])
            #expect(refused.status == 3, "refused with exit status 3:\n\(refused.output)")
            #expect(refused.output.contains("refused: eu-west-1 is") && refused.output.contains("(12 events) behind us-east-1"), "\(refused.output)")
            let stillOld = try await client.send("GET", deployment.address("eu-west-1"), "/v1/status")
            #expect(stillOld.json?.objectValue?["primary"] == .string("us-east-1"), "nothing was promoted")

            let forced = try await deployment.run(["failover", "--to", "eu-west-1", "--max-data-loss-ms", "500", "--force"])
            #expect(forced.status == 0, "\(forced.output)")
            #expect(forced.output.contains("forced: 12 events of georep.us-east-1.changes were not applied by eu-west-1"), "\(forced.output)")
            #expect(forced.output.contains("partition ") && forced.output.contains("offsets "), "\(forced.output)")
            let promoted = try await client.send("GET", deployment.address("eu-west-1"), "/v1/status")
            #expect(promoted.json?.objectValue?["primary"] == .string("eu-west-1") && promoted.json?.objectValue?["accepting_writes"] == .bool(true))
            let write = try await client.send("PUT", deployment.address("ap-southeast-1"), NodeHTTPClient.rowPath("user_profile", "99"), json: ["display_name": "after"])
            #expect(write.status == 200 && write.headers["georep-routed-to"] == "eu-west-1", "writes go to the new primary: \(write.status) \(write.error ?? "")")
        }
    }

    // MARK: - Helpers

    /// eu-west-1's lag behind us-east-1 in ms, in a report.
    private func euLagMillis(_ report: LagReport) -> Int64 {
        report.rows.filter { $0.target == "eu-west-1" && $0.source == "us-east-1" }.compactMap(\.lagMillis).max() ?? 0
    }

    /// Waits until `georep lag`'s report shows no lag anywhere.
    private func waitForZeroLag(_ deployment: ProcessDeployment) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var last = try await lagReport(deployment)
        while last.rows.contains(where: { ($0.lagRecords ?? 1) > 0 || ($0.lagMillis ?? 1) > 0 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            last = try await lagReport(deployment)
        }
        #expect(!last.rows.contains { ($0.lagRecords ?? 1) > 0 || ($0.lagMillis ?? 1) > 0 }, "the lag returns to 0:\n\(last.table)")
    }

    private func lagReport(_ deployment: ProcessDeployment) async throws -> LagReport {
        let result = try await deployment.run(["lag", "--json"])
        guard let report = try? JSONDecoder().decode(LagReport.self, from: Data(result.output.utf8)) else {
            throw ProcessFailure("georep lag --json printed no report (status \(result.status)):\n\(result.output)")
        }
        return report
    }

    private func lagMetric(_ client: NodeHTTPClient, _ address: HostPort, source: String) async throws -> (records: Double, millis: Double) {
        let text = String(decoding: try await client.send("GET", address, "/metrics").body, as: UTF8.self)
        func value(_ name: String) -> Double {
            text.split(separator: "\n").first { $0.hasPrefix(name + "{") && $0.contains("source=\"\(source)\"") }
                .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } } ?? -1
        }
        return (value("georep_replication_lag_records"), value("georep_replication_lag_ms"))
    }

    private func expectRows(_ client: NodeHTTPClient, _ address: HostPort, _ rows: [Load.Write], present: Bool, region: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        for row in rows {
            var reply = try await client.send("GET", address, NodeHTTPClient.rowPath("user_profile", "\(row.id)"))
            while present, reply.status != 200, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                reply = try await client.send("GET", address, NodeHTTPClient.rowPath("user_profile", "\(row.id)"))
            }
            if present {
                #expect(reply.status == 200 && reply.json?.objectValue?["display_name"] == .string(row.name),
                        "\(region) holds acknowledged write \(row.id) (acknowledged by \(row.region)): \(reply.status)")
            } else {
                #expect(reply.status == 404, "\(region) does not hold fenced write \(row.id): \(reply.status) \(reply.json?.jsonText ?? "")")
            }
        }
    }

    struct DeadLetter: Sendable {
        var region: String
        var key: String
        var reason: String
    }

    /// Every region's dead-letter topic.
    private func deadLetters(_ deployment: ProcessDeployment) async throws -> [DeadLetter] {
        var letters: [DeadLetter] = []
        for region in deployment.config.regions.map(\.id) {
            let consumer = try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(bootstrapServers: deployment.bootstrap, groupID: "test-dlq-\(UUID())"), logger: Logger(label: "test"))
            let partitions = (0..<Int32(deployment.config.partitions)).map { TopicPartition(topic: Topics.deadLetters(region), partition: $0) }
            var pending = try await consumer.endOffsets(of: partitions).filter { $0.value > 0 }
            try await consumer.assign(pending.keys.map { TopicPartitionOffset($0, offset: .beginning) })
            let deadline = ContinuousClock.now + .seconds(10)
            while !pending.isEmpty, ContinuousClock.now < deadline {
                for message in try await consumer.poll(maxMessages: 500, timeout: .milliseconds(200)) where !message.isPartitionEOF {
                    if let end = pending[message.topicPartition], message.offset + 1 >= end { pending[message.topicPartition] = nil }
                    letters.append(DeadLetter(
                        region: region, key: message.key.map { String(decoding: $0, as: UTF8.self) } ?? "",
                        reason: message.headers.string(named: GeorepHeader.error) ?? ""))
                }
            }
            await consumer.close()
        }
        return letters
    }
}

/// A continuous write load: new user_profile rows, each retried until acknowledged or stopped.
final class Load: Sendable {
    struct Write: Sendable, Hashable {
        var id: Int
        var name: String
        var region: String
    }

    let client: NodeHTTPClient
    let address: HostPort
    private let state = Mutex<(writes: [Write], stopped: Bool)>(([], false))

    init(client: NodeHTTPClient, address: HostPort) {
        self.client = client
        self.address = address
    }

    var acknowledged: [Write] { state.withLock { $0.writes } }
    var acknowledgedBy: Set<String> { Set(acknowledged.map(\.region)) }

    func stop() { state.withLock { $0.stopped = true } }

    /// Writes rows `idOffset + 1, 2, ...` one after another until stopped.
    func run(idOffset: Int) async {
        var id = idOffset + 1
        while !state.withLock({ $0.stopped }) {
            let name = "n\(id)"
            if let reply = try? await client.send("PUT", address, NodeHTTPClient.rowPath("user_profile", "\(id)"), json: ["display_name": .string(name)]),
               reply.status == 200 {
                let region = reply.json?.objectValue?["region"]?.stringValue ?? "?"
                state.withLock { $0.writes.append(Write(id: id, name: name, region: region)) }
                id += 1
            } else {
                try? await Task.sleep(for: .milliseconds(5))
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
