import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepNode
import Logging
import Synchronization
import Testing

/// Runs `body` on a fresh in-process deployment of three regions and a client.
func withDeployment(
    roundTripMillis: Int = 0, topology: Topology = .activeActive, settings: RegionNode.Settings = RegionNode.Settings(),
    _ body: (LocalDeployment, NodeHTTPClient) async throws -> Void
) async throws {
    var logger = Logger(label: "test.deployment")
    logger.logLevel = .warning
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("georep-consistency-\(UUID().uuidString.prefix(8))")
    let deployment = try await LocalDeployment(directory: directory, roundTripMillis: roundTripMillis, topology: topology, settings: settings, logger: logger)
    let client = NodeHTTPClient(timeout: .seconds(30))
    do {
        try await body(deployment, client)
    } catch {
        Issue.record(error)
    }
    try? await client.shutdown()
    await deployment.shutdown()
    try? FileManager.default.removeItem(at: directory)
}

/// Counts of a concurrent test.
final class Tally: Sendable {
    let fresh = Atomic<Int>(0)
    let stale = Atomic<Int>(0)
    let failures = Mutex<[String]>([])
    let servedBy = Mutex<[String: Int]>([:])

    func fail(_ text: String) { failures.withLock { $0.append(text) } }
}

@Suite("consistency and routing", .serialized, .tags(.process), .startsProcesses)
struct ConsistencyTests {
    @Test("with 80 ms round trips, 1,000 reads at eu-west-1 right after a write at us-east-1 all return the write when they carry its token; without it some are stale")
    func readYourWritesAcrossRegions() async throws {
        try await withDeployment(roundTripMillis: 80) { deployment, client in
            let (writer, reader) = (deployment.address("us-east-1"), deployment.address("eu-west-1"))
            let tally = Tally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<25 {
                    group.addTask {
                        for round in 0..<40 {
                            let id = worker * 1000 + round
                            let value = "v\(id)-\(UUID().uuidString.prefix(6))"
                            let path = NodeHTTPClient.rowPath("user_profile", "\(id)")
                            let written = try await client.send("PUT", writer, path, json: ["display_name": .string(value)])
                            guard written.status == 200, let token = written.token else { tally.fail("write \(id): \(written.status)"); continue }
                            let plain = try await client.send("GET", reader, path)
                            if plain.json?.objectValue?["display_name"]?.stringValue != value { tally.stale.add(1, ordering: .relaxed) }
                            let checked = try await client.send("GET", reader, path, headers: ["georep-token": token])
                            if checked.json?.objectValue?["display_name"]?.stringValue == value {
                                tally.fresh.add(1, ordering: .relaxed)
                            } else {
                                tally.fail("read \(id) with token \(token): \(checked.status) \(checked.json?.jsonText ?? "")")
                            }
                            tally.servedBy.withLock { $0[checked.servedBy ?? "?", default: 0] += 1 }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally.failures.withLock { $0 }.isEmpty, "\(tally.failures.withLock { $0.prefix(5) })")
            #expect(tally.fresh.load(ordering: .relaxed) == 1000)
            #expect(tally.stale.load(ordering: .relaxed) > 0, "reads without the token were never stale: the check would prove nothing")
            let served = tally.servedBy.withLock { $0 }
            #expect(Set(served.keys).isSubset(of: ["local", "waited", "origin"]), "\(served)")
            print("read-your-writes: 1000/1000 fresh with the token (served by \(served)); \(tally.stale.load(ordering: .relaxed)) stale without it")
        }
    }

    @Test("a reader switching regions and sending back the highest tokens it has seen never reads older state")
    func monotonicReads() async throws {
        try await withDeployment(roundTripMillis: 20) { deployment, client in
            let path = NodeHTTPClient.rowPath("user_profile", "1")
            let writes = Task {
                for number in 1...150 {
                    _ = try await client.send("PUT", deployment.address("us-east-1"), path, json: ["bio": .string("\(number)")])
                }
            }
            var seen: [String: WriteToken] = [:]
            var last = 0
            var reads = 0
            var regressions: [String] = []
            let readers = ["eu-west-1", "ap-southeast-1", "us-east-1"]
            // Reads go on until the last write was seen (or a deadline), at least 300 of them.
            let deadline = ContinuousClock.now + .seconds(60)
            while reads < 300 || last < 150, ContinuousClock.now < deadline {
                let region = readers[reads % readers.count]
                reads += 1
                let header = seen.values.map(\.description).joined(separator: ",")
                let reply = try await client.send("GET", deployment.address(region), path, headers: header.isEmpty ? [:] : ["georep-token": header])
                if reply.status == 404 { continue }
                let number = Int(reply.json?.objectValue?["bio"]?.stringValue ?? "") ?? 0
                if number < last { regressions.append("\(region) returned \(number) after \(last)") }
                last = max(last, number)
                for token in WriteToken.parseList(reply.token ?? "") ?? [] {
                    let slot = "\(token.region):\(token.partition)"
                    if (seen[slot]?.offset ?? -1) < token.offset { seen[slot] = token }
                }
            }
            try await writes.value
            #expect(regressions.isEmpty, "\(regressions.prefix(5))")
            #expect(last == 150, "the reader saw every write in the end")
        }
    }

    @Test("single-primary: writes sent to every node are published by the primary only, and every node converges")
    func singlePrimary() async throws {
        try await withDeployment(topology: .singlePrimary) { deployment, client in
            let primary = try #require(deployment.config.primary)
            var tokens: [String] = []
            for (index, region) in LocalDeployment.regions.enumerated() {
                for number in 0..<40 {
                    let reply = try await client.send("POST", deployment.address(region), NodeHTTPClient.rowPath("cart", "c\(number % 5)", "/increment"), json: ["views": 1])
                    #expect(reply.status == 200, "\(region): \(reply.status) \(reply.error ?? "")")
                    let put = try await client.send("PUT", deployment.address(region), NodeHTTPClient.rowPath("user_profile", "\(index * 100 + number)"), json: ["bio": .string(region)])
                    #expect(put.status == 200)
                    tokens += [reply.token, put.token].compactMap { $0 }
                }
            }
            #expect(tokens.allSatisfy { $0.hasPrefix("\(primary):") }, "every token names the primary")
            for region in LocalDeployment.regions {
                let broker = deployment.brokers[region]!
                let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, groupID: "probe"), logger: Logger(label: "probe"))
                let ends = try await consumer.endOffsets(of: (0..<Int32(deployment.config.partitions)).map { TopicPartition(topic: Topics.changes(region), partition: $0) })
                await consumer.close()
                let published = ends.values.reduce(0, +)
                if region == primary { #expect(published == 240) } else { #expect(published == 0, "\(region) published \(published) events") }
                let status = try await client.send("GET", deployment.address(region), "/v1/status")
                #expect(status.json?.objectValue?["primary"]?.stringValue == primary)
            }
            let header = tokens.joined(separator: ",")
            for region in LocalDeployment.regions {
                let reply = try await client.send("GET", deployment.address(region), NodeHTTPClient.rowPath("cart", "c0"), headers: ["georep-token": header])
                #expect(reply.json?.objectValue?["views"] == 24, "\(region): \(reply.json?.jsonText ?? "")")
            }
            for table in ["user_profile", "cart"] {
                var snapshots: [[[String: JSONValue]]] = []
                for region in LocalDeployment.regions { snapshots.append(try await deployment.nodes[region]!.store.snapshot(table: table)) }
                #expect(snapshots.allSatisfy { $0 == snapshots[0] }, "\(table) differs between regions")
            }
        }
    }

    @Test("1,000 pinned rows written at eu-west-1 never reach a change topic, and reads at the other regions get them through eu-west-1")
    func pinnedRows() async throws {
        try await withDeployment(roundTripMillis: 5) { deployment, client in
            let home = "eu-west-1"
            let tally = Tally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<20 {
                    group.addTask {
                        for id in stride(from: worker, to: 1000, by: 20) {
                            let reply = try await client.send("PUT", deployment.address(home), NodeHTTPClient.rowPath("user_pii", "\(id)"),
                                                              json: ["email": .string("person-\(id)@secret.example")])
                            if reply.status != 200 { tally.fail("\(id): \(reply.status) \(reply.error ?? "")") }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally.failures.withLock { $0 }.isEmpty, "\(tally.failures.withLock { $0.prefix(3) })")

            // The other regions learn the rows' home from the directory (claims in georep.directory).
            for region in ["us-east-1", "ap-southeast-1"] {
                let deadline = ContinuousClock.now + .seconds(30)
                while try await deployment.nodes[region]!.store.pinnedHome(table: "user_pii", key: ["user_id": 999]) == nil, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            // No change topic of any region, nor the directory, holds their content.
            var scanned = 0
            let topics = LocalDeployment.regions.map { (deployment.config.region(id: $0)!.kafka, Topics.changes($0), deployment.config.partitions) }
                + [(deployment.config.controlCluster, Topics.directory, 1)]
            for (cluster, topic, partitionCount) in topics {
                let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: cluster, groupID: "scan"), logger: Logger(label: "scan"))
                let partitions = (0..<Int32(partitionCount)).map { TopicPartition(topic: topic, partition: $0) }
                let expected = try await consumer.endOffsets(of: partitions).values.reduce(0, +)
                try await consumer.assign(partitions.map { TopicPartitionOffset($0, offset: .beginning) })
                var records: [KafkaMessage] = []
                let deadline = ContinuousClock.now + .seconds(30)
                while records.count < expected, ContinuousClock.now < deadline { records += try await consumer.poll(maxMessages: 5000, timeout: .milliseconds(100)) }
                await consumer.close()
                #expect(records.count == expected)
                scanned += records.count
                for record in records {
                    let text = String(decoding: record.value ?? Data(), as: UTF8.self)
                    #expect(!text.contains("secret.example") && !text.contains("email"), "a change topic holds pinned content: \(text)")
                }
            }
            #expect(scanned >= 1000, "the directory's claims (locate events) are on \(Topics.directory)")
            #expect(try await deployment.nodes["us-east-1"]!.store.snapshot(table: "user_pii").isEmpty, "no pinned row is stored outside its home region")

            for region in ["us-east-1", "ap-southeast-1"] {
                for id in 0..<1000 {
                    let reply = try await client.send("GET", deployment.address(region), NodeHTTPClient.rowPath("user_pii", "\(id)"))
                    guard reply.status == 200, reply.json?.objectValue?["email"]?.stringValue == "person-\(id)@secret.example",
                          reply.headers["georep-routed-to"] == home, reply.servedBy == "origin" else {
                        Issue.record("\(region) read of pinned row \(id): \(reply.status) \(reply.json?.jsonText ?? "") \(reply.headers)")
                        break
                    }
                }
            }
            // A write of a pinned row at another region goes to its home too.
            let moved = try await client.send("PUT", deployment.address("us-east-1"), NodeHTTPClient.rowPath("user_pii", "5"), json: ["email": "new@secret.example"])
            #expect(moved.status == 200 && moved.headers["georep-routed-to"] == home, "\(moved.status) \(moved.error ?? "")")
            #expect(try await deployment.nodes[home]!.store.row(table: "user_pii", key: ["user_id": 5])?["email"] == "new@secret.example")
        }
    }

    @Test("sticky mode: after a user's write, that user's reads at a replica go to the region that took the write")
    func stickyReads() async throws {
        var settings = RegionNode.Settings()
        settings.stickyReadWindow = .seconds(30)
        try await withDeployment(roundTripMillis: 40, topology: .singlePrimary, settings: settings) { deployment, client in
            let replica = deployment.address("eu-west-1")
            let path = NodeHTTPClient.rowPath("user_profile", "77")
            let written = try await client.send("PUT", replica, path, json: ["bio": "mine"], headers: ["georep-user": "ann"])
            #expect(written.status == 200 && written.headers["georep-routed-to"] == "us-east-1")
            let mine = try await client.send("GET", replica, path, headers: ["georep-user": "ann"])
            #expect(mine.status == 200 && mine.json?.objectValue?["bio"] == "mine" && mine.headers["georep-routed-to"] == "us-east-1")
            let other = try await client.send("GET", replica, path, headers: ["georep-user": "bob"])
            #expect(other.headers["georep-routed-to"] == nil, "another user's reads stay local")
        }
    }
}
