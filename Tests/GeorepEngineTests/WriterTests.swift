import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import Testing

/// Refused requests name their problem and write nothing.
@Suite("Writer", .serialized)
struct WriterTests {
    @Test("bad requests throw a typed error naming the problem and publish nothing")
    func refusesBadRequests() async throws {
        try await withExampleDeployment { config, broker in
            let node = try await TestNode(region: "us-east-1", config: config)
            let bad: [(WriteRequest, String)] = [
                (WriteRequest(table: "nope", key: ["id": 1], operation: .delete), "unknown table nope"),
                (WriteRequest(table: "user_profile", key: ["user_id": "x"], operation: .delete), "key column user_id"),
                (WriteRequest(table: "user_profile", key: ["user_id": 1], operation: .upsert(["shoe_size": 9])), "no column shoe_size"),
                (WriteRequest(table: "user_profile", key: ["user_id": 1], operation: .upsert(["bio": 9])), "column bio"),
                (WriteRequest(table: "user_profile", key: ["user_id": 1], operation: .upsert([:])), "names no column"),
                (WriteRequest(table: "cart", key: ["cart_id": "c"], operation: .increment(["note": 1])), "counter"),
                (WriteRequest(table: "user_pii", key: ["user_id": 1], operation: .upsert(["home_region": "eu-west-1"])), "region eu-west-1"),
            ]
            for (request, problem) in bad {
                do throws(WriteError) {
                    _ = try await node.writer.write(request)
                    Issue.record("\(request) was accepted")
                } catch {
                    #expect(error.description.contains(problem), "\(error)")
                }
            }
            let good = try await node.writer.write(WriteRequest(table: "user_profile", key: ["user_id": 1], operation: .upsert(["bio": "ok"])))
            #expect(good.token.description == "us-east-1:\(good.position.partition.partition):\(good.position.offset)")
            #expect(WriteToken(good.token.description) == good.token)
            // Only the good write reached the log.
            let records = try await readTopic(Topics.changes("us-east-1"), broker: broker, partitions: 6, count: 1)
            #expect(records.count == 1)
            #expect(try await node.store.row(table: "user_profile", key: ["user_id": 1])?["bio"] == "ok")
            try await node.shutdown()
        }
    }

    @Test("the applier only stores the positions of the events the writer applied locally")
    func ownEventsAreMergedOnce() async throws {
        try await withExampleDeployment { config, _ in
            let node = try await TestNode(region: "us-east-1", config: config)
            var receipts: [WriteReceipt] = []
            for number in 0..<300 {
                receipts.append(try await node.writer.write(WriteRequest(
                    table: "user_profile", key: ["user_id": .int(Int64(number % 50))], operation: .upsert(["bio": .string("v\(number)")]))))
            }
            for receipt in receipts {
                #expect(await node.applier.waitUntilApplied(past: receipt.position, timeout: .seconds(30)))
            }
            // Every position was taken by the applier; nothing is left to pile up.
            #expect(node.localApplyLedger.count == 0)
            #expect(node.applier.progress.eventsApplied >= 300)
            // The writer's local applies finish before the applier polls most of them.
            #expect(node.applier.progress.eventsAppliedByWriter > 0)
            #expect(node.applier.progress.deadLetters == 0)
            // Events recorded without being merged count toward the applier's progress too.
            #expect(node.applier.progress.lastAppliedHLC == receipts.map(\.event.hlc).max())
            let positions = try await node.store.positions()
            for receipt in receipts {
                #expect((positions[receipt.position.partition] ?? 0) > receipt.position.offset)
            }
            for key in 0..<50 {
                #expect(try await node.store.row(table: "user_profile", key: ["user_id": .int(Int64(key))])?["bio"] == .string("v\(250 + key)"))
            }
            try await node.shutdown()
        }
    }
}
