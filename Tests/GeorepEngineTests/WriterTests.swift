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
        try await withTemporaryDirectory { directory in
            try await withRegionsBroker(regions: ConvergenceTests.regions) { broker in
                let config = try exampleConfig(broker: broker, directory: directory)
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
    }
}
