import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepNode
import Logging
import Testing

/// One region node in this process on a development broker, driven over its HTTP API.
final class InProcessNode: Sendable {
    let broker: DevelopmentBroker
    let node: RegionNode
    let client = NodeHTTPClient(timeout: .seconds(20))
    let directory: URL
    private let run: Task<Void, any Error>

    init(region: String = "us-east-1", settings: RegionNode.Settings = RegionNode.Settings()) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("georep-api-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var logger = Logger(label: "test.node")
        logger.logLevel = .warning
        let broker = try DevelopmentBroker(brokers: 1, logger: logger)
        self.broker = broker
        let config = try Self.exampleDeployment(on: broker, directory: directory)
        node = try await RegionNode(config: config, region: region, settings: settings, logger: logger)
        let node = node
        run = Task { try await node.run() }
        let deadline = ContinuousClock.now + .seconds(30)
        while node.listenAddress == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    }

    var address: HostPort { node.config.region(id: node.region)!.http }

    /// The example configuration with every region on `broker` (its topics created), a free
    /// loopback port and a SQLite file in `directory`.
    static func exampleDeployment(on broker: DevelopmentBroker, directory: URL) throws -> GeorepConfig {
        var config = try GeorepConfig.load(path: repositoryRoot.appendingPathComponent("schemas/examples/georep.yaml").path)
        config.regions = try config.regions.map { region in
            var region = region
            region.kafka = broker.bootstrapServers
            region.http = HostPort(host: "127.0.0.1", port: try freeLoopbackPort())
            region.store = .sqlite(path: directory.appendingPathComponent("\(region.id).sqlite").path)
            return region
        }
        for topic in Topics.required(by: config) { try broker.createTopic(topic.name, partitions: topic.partitions) }
        return config
    }

    func send(_ method: String, _ path: String, json: JSONValue? = nil, raw: String? = nil, headers: [String: String] = [:]) async throws -> NodeHTTPClient.Reply {
        if let raw { return try await client.send(method, address, path, body: Array(raw.utf8), headers: headers) }
        return try await client.send(method, address, path, json: json, headers: headers)
    }

    /// The end offsets of every change and pinned topic: what has been published.
    func publishedOffsets() async throws -> [TopicPartition: Int64] {
        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, groupID: "probe"), logger: Logger(label: "probe"))
        let partitions = node.config.regions.flatMap { region in
            (0..<Int32(node.config.partitions)).flatMap { [TopicPartition(topic: Topics.changes(region.id), partition: $0), TopicPartition(topic: Topics.pinned(region.id), partition: $0)] }
        }
        let ends = try await consumer.endOffsets(of: partitions)
        await consumer.close()
        return ends
    }

    /// Runs `body` with a started node, then stops it, also when `body` throws.
    static func with(_ body: (InProcessNode) async throws -> Void) async throws {
        let node = try await InProcessNode()
        let result: Result<Void, any Error>
        do {
            try await body(node)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        await node.shutdown()
        try result.get()
    }

    func shutdown() async {
        await node.shutdown()
        _ = try? await run.value
        try? await client.shutdown()
        await broker.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite("node HTTP API")
struct NodeAPITests {
    @Test("writes return a token and reads return the merged row; every write operation works")
    func operations() async throws {
        try await InProcessNode.with { node in
            let put = try await node.send("PUT", "/v1/tables/user_profile/rows/42", json: ["display_name": "Ann", "bio": "hello"])
            #expect(put.status == 200)
            let token = try #require(put.token.flatMap(WriteToken.init))
            #expect(token.region == "us-east-1")
            let read = try await node.send("GET", "/v1/tables/user_profile/rows/42")
            #expect(read.status == 200)
            #expect(read.json == ["user_id": 42, "display_name": "Ann", "bio": "hello"])
            #expect(read.servedBy == "local")

            #expect(try await node.send("POST", "/v1/tables/cart/rows/c1/add", json: ["items": ["sku-2", "sku-1"], "saved": ["a", "b"]]).status == 200)
            #expect(try await node.send("POST", "/v1/tables/cart/rows/c1/remove", json: ["saved": ["a"]]).status == 200)
            #expect(try await node.send("POST", "/v1/tables/cart/rows/c1/increment", json: ["views": 5]).status == 200)
            #expect(try await node.send("POST", "/v1/tables/cart/rows/c1/increment", json: ["views": -2]).status == 200)
            let cart = try await node.send("GET", "/v1/tables/cart/rows/c1")
            #expect(cart.json?.objectValue?["items"] == ["sku-1", "sku-2"])
            #expect(cart.json?.objectValue?["saved"] == ["b"])
            #expect(cart.json?.objectValue?["views"] == 3)

            let deleted = try await node.send("DELETE", "/v1/tables/user_profile/rows/42")
            #expect(deleted.status == 200 && deleted.token != nil)
            let gone = try await node.send("GET", "/v1/tables/user_profile/rows/42")
            #expect(gone.status == 404)
            #expect(gone.error?.contains("42") == true)

            let health = try await node.send("GET", "/health")
            #expect(health.status == 200)
            let status = try await node.send("GET", "/v1/status")
            #expect(status.json?.objectValue?["region"] == "us-east-1")
            #expect(status.json?.objectValue?["topology"] == "active-active")
            #expect(status.json?.objectValue?["regions"]?.arrayValue?.count == 3)
        }
    }

    @Test("bad requests get a 4xx with a JSON error naming the problem, and nothing is published or stored")
    func badInput() async throws {
        try await InProcessNode.with { node in
            #expect(try await node.send("PUT", "/v1/tables/user_profile/rows/1", json: ["display_name": "kept"]).status == 200)
            let before = try await node.publishedOffsets()
            let cases: [(String, String, String?, Int, String)] = [
                ("PUT", "/v1/tables/nope/rows/1", #"{"a": 1}"#, 404, "unknown table nope"),
                ("PUT", "/v1/tables/user_profile/rows/1", #"{"shoe_size": 44}"#, 400, "shoe_size"),
                ("PUT", "/v1/tables/user_profile/rows/1", #"{"display_name": 5}"#, 400, "display_name"),
                ("PUT", "/v1/tables/user_profile/rows/1", #"{"display_name": "x""#, 400, "malformed JSON"),
                ("PUT", "/v1/tables/user_profile/rows/1", #"["display_name"]"#, 400, "JSON object"),
                ("PUT", "/v1/tables/user_profile/rows/1", #"{}"#, 400, "no column"),
                ("PUT", "/v1/tables/user_profile/rows/abc", #"{"display_name": "x"}"#, 400, "user_id"),
                ("PUT", "/v1/tables/user_profile/rows/1", #"{"user_id": 2}"#, 400, "user_id is a key column of table user_profile: the path gives it"),
                ("POST", "/v1/tables/cart/rows/c1/add", #"{"items": "sku-1"}"#, 400, "array"),
                ("POST", "/v1/tables/cart/rows/c1/add", #"{"note": ["x"]}"#, 400, "note"),
                ("POST", "/v1/tables/cart/rows/c1/remove", #"{"items": ["sku-1"]}"#, 400, "items"),
                ("POST", "/v1/tables/cart/rows/c1/increment", #"{"views": "3"}"#, 400, "integer"),
                ("POST", "/v1/tables/cart/rows/c1/increment", #"{"note": 3}"#, 400, "note"),
                ("PUT", "/v1/tables/user_pii/rows/9", #"{"home_region": "mars-1", "email": "a@b"}"#, 422, "mars-1"),
                ("GET", "/v1/tables/user_profile/rows/1?x", nil, 200, ""),
                ("PATCH", "/v1/tables/user_profile/rows/1", #"{"display_name": "x"}"#, 405, "GET, PUT, DELETE"),
                ("POST", "/v1/tables/user_profile/rows/1", #"{"display_name": "x"}"#, 405, "POST is not served"),
                ("GET", "/v1/tables/cart/rows/c1/increment", nil, 405, "POST"),
                // Over Kafka's record size, under the HTTP body limit: no retry can help.
                ("PUT", "/v1/tables/user_profile/rows/1", #"{"bio": ""# + String(repeating: "b", count: 1_000_100) + #""}"#, 413, "message.max.bytes"),
                ("GET", "/v2/nothing", nil, 404, "/v2/nothing"),
            // Operator hooks are off unless the node is started with them.
            ("POST", "/v1/admin/applier/pause", nil, 404, "/v1/admin/applier/pause"),
            ]
            for (method, path, body, status, mention) in cases {
                let reply = try await node.send(method, path, raw: body)
                #expect(reply.status == status, "\(method) \(path) \(body ?? ""): \(reply.status) \(reply.error ?? "")")
                if status >= 400 {
                    let error = try #require(reply.error, "\(method) \(path): no JSON error body: \(String(decoding: reply.body, as: UTF8.self))")
                    #expect(error.contains(mention), "\(method) \(path): '\(error)' does not name '\(mention)'")
                    #expect(reply.headers["content-type"] == "application/json")
                }
            }
            let badToken = try await node.send("GET", "/v1/tables/user_profile/rows/1", headers: ["georep-token": "us-east-1:x:1"])
            #expect(badToken.status == 400 && badToken.error?.contains("georep-token") == true)
            let unknownRegionToken = try await node.send("GET", "/v1/tables/user_profile/rows/1", headers: ["georep-token": "mars-1:0:1"])
            #expect(unknownRegionToken.status == 400 && unknownRegionToken.error?.contains("mars-1") == true)
            let noSuchPartition = try await node.send("GET", "/v1/tables/user_profile/rows/1", headers: ["georep-token": "eu-west-1:99:0"])
            #expect(noSuchPartition.status == 400 && noSuchPartition.error?.contains("partition 99") == true)
            #expect(try await node.send("PATCH", "/v1/tables/user_profile/rows/1").headers["allow"] == "GET, PUT, DELETE")

            #expect(try await node.publishedOffsets() == before, "a refused request published nothing")
            #expect(try await node.send("GET", "/v1/tables/user_profile/rows/1").json?.objectValue?["display_name"] == "kept")
            #expect(try await node.send("GET", "/v1/tables/cart/rows/c1").status == 404)
            #expect(try await node.send("GET", "/v1/tables/user_pii/rows/9").status == 404)

            // Refused after something was stored.
            let overflow = "/v1/tables/cart/rows/c2/increment"
            #expect(try await node.send("POST", overflow, raw: #"{"views": 9223372036854775807}"#).status == 200)
            let pastMax = try await node.send("POST", overflow, raw: #"{"views": 1}"#)
            #expect(pastMax.status == 400 && pastMax.error?.contains("64-bit") == true, "\(pastMax.status) \(pastMax.error ?? "")")
            #expect(try await node.send("POST", overflow, raw: #"{"views": -1}"#).status == 200)
            #expect(try await node.send("GET", "/v1/tables/cart/rows/c2").json?.objectValue?["views"] == .int(Int64.max - 1))
            #expect(try await node.send("PUT", "/v1/tables/user_pii/rows/9", raw: #"{"email": "a@b"}"#).status == 200)
            let move = try await node.send("PUT", "/v1/tables/user_pii/rows/9", raw: #"{"home_region": "eu-west-1"}"#)
            #expect(move.status == 409 && move.error?.contains("cannot change: the row lives in region us-east-1") == true, "\(move.error ?? "")")
        }
    }

    @Test("GET /metrics is Prometheus text with the documented metric names")
    func metrics() async throws {
        try await InProcessNode.with { node in
            #expect(try await node.send("PUT", "/v1/tables/user_profile/rows/5", json: ["bio": "x"]).status == 200)
            var text = ""
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let reply = try await node.send("GET", "/metrics")
                #expect(reply.status == 200)
                #expect(reply.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
                text = String(decoding: reply.body, as: UTF8.self)
                if text.contains("georep_replication_lag_ms"), text.contains("georep_events_applied_total{region=\"us-east-1\"} 1") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            for name in ["georep_replication_lag_ms", "georep_replication_lag_records", "georep_events_applied_total", "georep_conflicts_total", "georep_dead_letters_total"] {
                #expect(text.contains("\n\(name){") || text.hasPrefix("\(name){"), "missing \(name)")
            }
            #expect(text.contains(#"georep_replication_lag_ms{source="eu-west-1",target="us-east-1"}"#))
            // Every line is a comment or `name{labels} value` of the text exposition format.
            let sample = try Regex(#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?([0-9.eE+-]+|Inf|NaN)$"#)
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                #expect(line.wholeMatch(of: sample) != nil, "not Prometheus text: \(line)")
            }
        }
    }
}
