import Foundation
import GeorepModel
import GeorepNode
import GeorepTestSupport
import Testing

/// Issue 15: whether an event is applied, and what it stores, is the same in every region and
/// on both stores. Generated edge values are written through SQLite and PostgreSQL regions;
/// every write is refused with a 4xx by every region or reads back byte for byte the same in
/// every region, and no applier stops.
@Suite("stores decide the same", .serialized, .tags(.process), .startsProcesses)
struct DifferentialTests {
    /// A table with every kind of column, text-keyed.
    static let edgeTable = """

      edge:
        key: [k]
        merge: lww-columns
        columns: {k: text, t: text, j: json, r: real, i: integer, b: boolean, g: gset, s: orset, c: counter}
    """

    /// Texts that stores, Unicode and JSON treat differently.
    static let texts: [String] = [
        "a", "a\u{0}b", "\u{0}", "caf\u{E9}", "cafe\u{301}", "K", "\u{212A}", "👍🏽", "שלום", "%", "%25FF", "100%", ",", "a,b",
        " ", "\t", "\\", "\"", "\u{1}", "\u{7F}", "\u{FEFF}", "e\u{301}\u{301}", String(repeating: "x", count: 1024),
        String(repeating: "é", count: 512), String(repeating: "y", count: 1025), String(repeating: "z", count: 3000),
    ]

    static let numbers: [String] = [
        "0", "-0", "-0.0", "0.1", "1.0", "1e308", "-1e308", "5e-324", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "1e400", "123456789012345678901234567890", "3.141592653589793", "2.5e-7",
    ]

    /// The JSON text of a string.
    static func quoted(_ text: String) -> String { JSONValue.string(text).jsonText }

    /// An array nested `depth` levels around `core`.
    static func nested(_ depth: Int, _ core: String = "1") -> String {
        String(repeating: "[", count: depth) + core + String(repeating: "]", count: depth)
    }

    /// One generated write: a method, a row suffix and a raw JSON body.
    struct Write: Sendable, CustomStringConvertible {
        var method: String
        var key: String
        var suffix: String
        var body: String?
        var description: String { "\(method) \(key.debugDescription.prefix(60))\(suffix) \(body?.debugDescription.prefix(120) ?? "")" }
    }

    static func writes(seed: UInt64, count: Int) -> [Write] {
        var random = SplitMix64(state: seed)
        func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
        var writes: [Write] = []
        // Every text as a key and as a value at least once.
        for text in texts {
            writes.append(Write(method: "PUT", key: text, suffix: "", body: "{\"t\": \(quoted(text))}"))
            writes.append(Write(method: "PUT", key: "value-\(writes.count)", suffix: "", body: "{\"t\": \(quoted(text)), \"j\": {\(quoted(text)): \(quoted(text))}}"))
        }
        // Canonically equivalent member names in one object, and elements across regions.
        writes.append(Write(method: "PUT", key: "names", suffix: "", body: "{\"j\": {\(quoted("caf\u{E9}")): 1, \(quoted("cafe\u{301}")): 2}}"))
        for depth in [62, 63, 64, 65, 66, 254, 255] {
            writes.append(Write(method: "PUT", key: "deep-\(depth)", suffix: "", body: "{\"j\": \(nested(depth))}"))
        }
        for number in numbers {
            writes.append(Write(method: "PUT", key: "number-\(writes.count)", suffix: "", body: "{\"r\": \(number), \"j\": \(number)}"))
            writes.append(Write(method: "PUT", key: "integer-\(writes.count)", suffix: "", body: "{\"i\": \(number)}"))
        }
        for delta in ["9223372036854775807", "-9223372036854775807", "-9223372036854775808", "1", "-1"] {
            writes.append(Write(method: "POST", key: "counter-bound", suffix: "/increment", body: "{\"c\": \(delta)}"))
        }
        // Random mixes, on a few shared keys so that regions meet.
        let shared = ["s1", "s2", "shared-caf\u{E9}", "shared-cafe\u{301}", "s,3"]
        while writes.count < count {
            let key = pick(shared)
            switch random.next() % 5 {
            case 0:
                writes.append(Write(method: "PUT", key: key, suffix: "", body: "{\"t\": \(quoted(pick(texts))), \"b\": \(pick(["true", "false", "null"]))}"))
            case 1:
                writes.append(Write(method: "POST", key: key, suffix: "/add", body: "{\"g\": [\(quoted(pick(texts)))], \"s\": [\(quoted(pick(texts))), \(pick(numbers))]}"))
            case 2:
                writes.append(Write(method: "POST", key: key, suffix: "/remove", body: "{\"s\": [\(quoted(pick(texts)))]}"))
            case 3:
                writes.append(Write(method: "POST", key: key, suffix: "/increment", body: "{\"c\": \(pick(["1", "-1", "9223372036854775807", "-9223372036854775807"]))}"))
            default:
                writes.append(Write(method: "PUT", key: key, suffix: "", body: "{\"j\": {\(quoted(pick(texts))): \(nested(Int(random.next() % 70), quoted(pick(texts))))}}"))
            }
        }
        return writes
    }

    @Test("generated edge values through two SQLite regions and one PostgreSQL region: every write is refused everywhere or reads back identical everywhere, and no applier stops")
    func edgeValuesDecideTheSameEverywhere() async throws {
        try await TestPostgres.withScratchDatabase { url in
            try await ProcessDeployment.with(extraTables: Self.edgeTable, stores: ["eu-west-1": url]) { deployment, client in
                let regions = deployment.config.regions.map(\.id)
                var problems: [String] = []
                var accepted: Set<String> = []
                var refusedCount = 0
                for (index, write) in Self.writes(seed: 15, count: 260).enumerated() {
                    let region = regions[index % regions.count]
                    let path = NodeHTTPClient.rowPath("edge", write.key, write.suffix)
                    let reply = try await client.send(write.method, deployment.address(region), path, body: write.body.map { Array($0.utf8) })
                    switch reply.status {
                    case 200:
                        accepted.insert(write.key)
                    case 400..<500:
                        refusedCount += 1
                        // Refused at one region: refused the same way at the others.
                        for other in regions where other != region {
                            let again = try await client.send(write.method, deployment.address(other), path, body: write.body.map { Array($0.utf8) })
                            if again.status != reply.status { problems.append("\(write): \(reply.status) at \(region), \(again.status) at \(other)") }
                        }
                    default:
                        problems.append("\(write) at \(region): \(reply.status) \(reply.error ?? "")")
                    }
                }
                // Every region converges on byte-identical rows.
                let deadline = ContinuousClock.now + .seconds(60)
                var differing = accepted
                while !differing.isEmpty, ContinuousClock.now < deadline {
                    for key in differing {
                        var bodies: Set<[UInt8]> = []
                        for region in regions {
                            let read = try await client.send("GET", deployment.address(region), NodeHTTPClient.rowPath("edge", key))
                            bodies.insert(read.status == 200 ? read.body : Array("\(read.status)".utf8))
                        }
                        if bodies.count == 1 { differing.remove(key) }
                    }
                    if !differing.isEmpty { try await Task.sleep(for: .milliseconds(250)) }
                }
                for key in differing.prefix(5) {
                    var seen: [String] = []
                    for region in regions {
                        let read = try await client.send("GET", deployment.address(region), NodeHTTPClient.rowPath("edge", key))
                        seen.append("\(region): \(read.status) \(String(decoding: read.body.prefix(200), as: UTF8.self))")
                    }
                    problems.append("row \(key.debugDescription.prefix(40)) differs: \(seen)")
                }
                // A text that can be stored is a key and a value that read back byte for byte.
                for text in Self.texts where StorableValues.problem(ofText: text) == nil && text.utf8.count <= StorableValues.maxKeyBytes {
                    let read = try await client.send("GET", deployment.address("eu-west-1"), NodeHTTPClient.rowPath("edge", text))
                    if read.json?.objectValue?["t"]?.stringValue.map({ Array($0.utf8) }) != Array(text.utf8)
                        || read.json?.objectValue?["k"]?.stringValue.map({ Array($0.utf8) }) != Array(text.utf8) {
                        problems.append("\(text.debugDescription.prefix(40)) read back as \(String(decoding: read.body.prefix(120), as: UTF8.self))")
                    }
                }
                for region in regions {
                    let status = try await client.send("GET", deployment.address(region), "/v1/status")
                    if status.json?.objectValue?["applier"]?.objectValue?["running"] != .bool(true) { problems.append("\(region)'s applier stopped") }
                    if deployment.nodes[region]?.isRunning != true { problems.append("\(region)'s node exited") }
                }
                print("differential: \(accepted.count) rows written, \(refusedCount) writes refused everywhere")
                #expect(refusedCount > 20 && accepted.count > 30, "the generator must exercise both outcomes")
                #expect(problems.isEmpty, "\(problems.prefix(12))")
            }
        }
    }
}
