import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepNode
import Logging
import Synchronization
import Testing

/// Issue 15 C: one home for every region-pinned row, chosen the same way everywhere.
@Suite("pinned row homes", .serialized, .tags(.process), .startsProcesses)
struct PinnedHomeTests {
    /// What one write was answered.
    struct Answer: Sendable {
        var status: Int
        var error: String?
        var routedTo: String?
        var hlc: String?
    }

    /// What one round's three writes were answered, by the region asked.
    struct Round: Sendable {
        var key: Int
        var answers: [String: Answer] = [:]
    }

    @Test("100 rounds of three concurrent first writes of a new pinned row at three regions: one is acknowledged, the others get 409 naming its home, and every region routes to that home",
          arguments: [false, true])
    func concurrentFirstWrites(appliersPaused: Bool) async throws {
        try await ProcessDeployment.with { deployment, client in
            let regions = deployment.config.regions.map(\.id)
            if appliersPaused {
                for region in regions {
                    let paused = try await client.send("POST", deployment.address(region), "/v1/admin/applier/pause")
                    #expect(paused.status == 200)
                }
            }
            var rounds: [Round] = []
            for key in 1...100 {
                let rowKey = 10_000 + key
                var round = Round(key: rowKey)
                try await withThrowingTaskGroup(of: (String, Answer).self) { group in
                    for region in regions {
                        group.addTask {
                            let reply = try await client.send(
                                "PUT", deployment.address(region), NodeHTTPClient.rowPath("user_pii", "\(rowKey)"),
                                json: ["email": .string("\(region)@secret.example")])
                            return (region, Answer(
                                status: reply.status, error: reply.error, routedTo: reply.headers["georep-routed-to"],
                                hlc: reply.json?.objectValue?["hlc"]?.stringValue))
                        }
                    }
                    for try await (region, answer) in group { round.answers[region] = answer }
                }
                rounds.append(round)
            }
            if appliersPaused {
                for region in regions { _ = try await client.send("POST", deployment.address(region), "/v1/admin/applier/resume") }
            }
            var problems: [String] = []
            var raced = 0
            for round in rounds {
                // The home: the region that took a write itself; a write that reached a region once
                // the directory named the home was forwarded there (georep-routed-to).
                let direct = round.answers.filter { $0.value.status == 200 && $0.value.routedTo == nil }.map(\.key)
                guard direct.count == 1, let home = direct.first else {
                    problems.append("row \(round.key): \(direct.count) writes acknowledged by the region asked: \(round.answers)")
                    continue
                }
                for (region, answer) in round.answers where region != home {
                    if answer.status == 200, answer.routedTo == home { continue }
                    if answer.status == 409, answer.error?.contains("lives in region \(home)") == true {
                        raced += 1
                        continue
                    }
                    problems.append("row \(round.key) at \(region): \(answer.status) \(answer.error ?? "") routed to \(answer.routedTo ?? "-") (the home is \(home))")
                }
                // Every region reads the latest acknowledged write, through the one home.
                let acknowledged = round.answers.filter { $0.value.status == 200 }
                    .max { UInt64($0.value.hlc ?? "") ?? 0 < UInt64($1.value.hlc ?? "") ?? 0 }
                let expected = "\(acknowledged?.key ?? "?")@secret.example"
                for region in regions {
                    let read = try await client.send("GET", deployment.address(region), NodeHTTPClient.rowPath("user_pii", "\(round.key)"))
                    if read.status != 200 || read.json?.objectValue?["email"]?.stringValue != expected {
                        problems.append("row \(round.key) read at \(region): \(read.status) \(read.json?.jsonText ?? read.error ?? ""), expected \(expected)")
                    }
                }
                if problems.count > 10 { break }
            }
            print("pinned race (appliers paused: \(appliersPaused)): 100 rows, \(raced) writes refused with 409 naming the home")
            #expect(raced > 0, "no two claims ever raced: the test proves nothing")
            #expect(problems.isEmpty, "\(problems.prefix(10))")
        }
    }

    @Test("a claim naming a region that is not configured, written with kcat, is dead-lettered in every region and routes nothing; a locate event on a change topic too")
    func claimsOfUnknownRegions() async throws {
        try await ProcessDeployment.with { deployment, client in
            let mars = #"{"v":1,"origin":"us-east-1","table":"user_pii","key":{"user_id":77},"op":"locate","hlc":"114428378130448384","epoch":1,"columns":{"home_region":"mars"}}"#
            let onChanges = mars.replacingOccurrences(of: "\"user_id\":77", with: "\"user_id\":78").replacingOccurrences(of: "mars", with: "us-east-1")
            try Self.kcat(deployment.bootstrap, topic: Topics.directory, key: "user_pii/77", value: mars)
            try Self.kcat(deployment.bootstrap, topic: Topics.changes("us-east-1"), key: "user_pii/78", value: onChanges)
            let regions = deployment.config.regions.map(\.id)
            // Every region refuses both; then the rows are an ordinary new row each.
            let deadline = ContinuousClock.now + .seconds(30)
            var refused: [String: Int] = [:]
            while ContinuousClock.now < deadline {
                for region in regions {
                    let status = try await client.send("GET", deployment.address(region), "/v1/status")
                    refused[region] = Int(status.json?.objectValue?["applier"]?.objectValue?["dead_letters"]?.intValue ?? 0)
                        + Int(status.json?.objectValue?["directory"]?.objectValue?["dead_letters"]?.intValue ?? 0)
                }
                if refused.values.allSatisfy({ $0 >= 2 }) { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(refused.values.allSatisfy { $0 >= 2 }, "\(refused)")
            for key in [77, 78] {
                for region in regions {
                    let read = try await client.send("GET", deployment.address(region), NodeHTTPClient.rowPath("user_pii", "\(key)"))
                    #expect(read.status == 404, "\(region) read of \(key): \(read.status) \(read.error ?? "")")
                }
                let written = try await client.send("PUT", deployment.address("eu-west-1"), NodeHTTPClient.rowPath("user_pii", "\(key)"), json: ["email": "e@x"])
                #expect(written.status == 200, "\(written.status) \(written.error ?? "")")
                let read = try await client.send("GET", deployment.address("ap-southeast-1"), NodeHTTPClient.rowPath("user_pii", "\(key)"))
                #expect(read.status == 200 && read.headers["georep-routed-to"] == "eu-west-1", "\(read.status) \(read.headers)")
            }
        }
    }

    /// Produces one record with kcat.
    static func kcat(_ bootstrap: String, topic: String, key: String, value: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["kcat", "-b", bootstrap, "-P", "-t", topic, "-p", "0", "-k", key]
        let input = Pipe()
        process.standardInput = input
        try process.run()
        input.fileHandleForWriting.write(Data(value.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
