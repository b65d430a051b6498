import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepNode
import Logging

/// The anomaly classes the checker reports.
enum AnomalyClass: String, CaseIterable, Sendable {
    case lostWrite = "lost acknowledged write"
    case resurrectedDelete = "resurrected delete"
    case unexpectedValue = "value never written"
    case counterMismatch = "counter off its acknowledged sum"
    case setMismatch = "set element lost or removed one present"
    case rowsDiffer = "rows differ between regions"
    case staleTokenRead = "token read older than its token"
    case nonMonotonicRead = "read went backward"
    case twoPrimaries = "writes of two primaries in one epoch"
    case pinnedInChangeTopic = "pinned content outside its home"
    case noWrites = "region takes no writes once healed"
}

/// One anomaly, with what shows it.
struct Anomaly: Sendable {
    var kind: AnomalyClass
    var detail: String
}

/// Checks a run's history against the final state of every region.
struct Checker {
    let deployment: TortureDeployment
    let history: [Operation]
    let client: NodeHTTPClient

    /// An LWW write's place in the order every region merges by.
    struct Stamp: Comparable {
        var hlc: UInt64
        var origin: String
        static func < (a: Stamp, b: Stamp) -> Bool { a.hlc != b.hlc ? a.hlc < b.hlc : a.origin.utf8.lexicographicallyPrecedes(b.origin.utf8) }
    }

    static func stamp(_ operation: Operation) -> Stamp? {
        guard operation.outcome == .ok, let hlc = operation.hlc, let origin = operation.origin else { return nil }
        return Stamp(hlc: hlc, origin: origin)
    }

    /// A region's answer to a read of a row: the status, the row (nil unless 200), and the body
    /// (the status for other answers) to compare regions by.
    typealias Answer = (status: Int, row: [String: JSONValue]?, body: [UInt8])

    /// Reads `table`'s row `key` at `regions` (every region by default): the answers by region.
    func read(_ table: String, _ key: String, at regions: [String] = TortureDeployment.regions) async throws -> [String: Answer] {
        var answers: [String: Answer] = [:]
        for region in regions {
            let reply = try await client.send("GET", deployment.address(region), NodeHTTPClient.rowPath(table, key))
            answers[region] = (reply.status, reply.status == 200 ? reply.json?.objectValue : nil, reply.status == 200 ? reply.body : Array("\(reply.status)".utf8))
        }
        return answers
    }

    /// Waits until every region answers every key the same (or `timeout`); returns the keys that still differ.
    func awaitConvergence(timeout: Duration) async throws -> [String] {
        let keys = Workload.profileKeys.map { ("user_profile", "\($0)") } + Workload.cartKeys.map { ("cart", "cart-\($0)") }
            + Workload.pinnedKeys.map { ("user_pii", "\($0)") }
        let deadline = ContinuousClock.now + timeout
        var differing = keys
        while true {
            var still: [(String, String)] = []
            for (table, key) in differing {
                let answers = try await read(table, key)
                if Set(answers.values.map(\.body)).count != 1 || answers.values.contains(where: { $0.status != 200 && $0.status != 404 }) {
                    still.append((table, key))
                }
            }
            differing = still
            if differing.isEmpty || ContinuousClock.now >= deadline { return differing.map { "\($0.0)/\($0.1)" } }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    func check(differing: [String]) async throws -> [Anomaly] {
        var anomalies = differing.map { Anomaly(kind: .rowsDiffer, detail: $0) }
        anomalies += try await checkRegisters(table: "user_profile", column: "display_name", keys: Workload.profileKeys.map { "\($0)" },
                                              writes: [.upsert, .delete])
        anomalies += try await checkRegisters(table: "cart", column: "note", keys: Workload.cartKeys.map { "cart-\($0)" }, writes: [.note])
        anomalies += try await checkRegisters(table: "user_pii", column: "email", keys: Workload.pinnedKeys.map { "\($0)" }, writes: [.pinned])
        anomalies += try await checkCarts()
        anomalies += checkReads()
        anomalies += try await checkLogs()
        anomalies += try await checkTakesWrites()
        return anomalies
    }

    /// Last-writer-wins registers: the final value is the acknowledged write with the greatest
    /// stamp (a delete: no row), unless a write of unknown outcome may have come later.
    private func checkRegisters(table: String, column: String, keys: [String], writes: Set<Operation.Kind>) async throws -> [Anomaly] {
        var anomalies: [Anomaly] = []
        for key in keys {
            let operations = history.filter { writes.contains($0.kind) && $0.key == key }
            let acknowledged = operations.filter { $0.outcome == .ok }
            let unknown = operations.filter { $0.outcome == .unknown }
            // Every region holds the same by now (or the row is reported as differing).
            let region = TortureDeployment.regions[0]
            guard let final = try await read(table, key, at: [region])[region] else { continue }
            let value = final.row?[column]?.stringValue
            let isAbsent = final.status == 404 || (table == "user_profile" && final.row == nil)
            guard let latest = acknowledged.max(by: { (Self.stamp($0) ?? Stamp(hlc: 0, origin: "")) < (Self.stamp($1) ?? Stamp(hlc: 0, origin: "")) }) else {
                if let value, !operations.contains(where: { $0.value == value && $0.outcome != .failed }) {
                    anomalies.append(Anomaly(kind: .unexpectedValue, detail: "\(table)/\(key) holds \(value)"))
                }
                continue
            }
            let fromUnknown = value.map { value in unknown.contains { $0.value == value } } ?? unknown.contains { $0.kind == .delete }
            if latest.kind == .delete {
                guard let value, !fromUnknown else { continue }
                if let write = acknowledged.first(where: { $0.value == value }) {
                    anomalies.append(Anomaly(kind: .resurrectedDelete, detail: "\(table)/\(key) holds \(value) (op \(write.id)), deleted later by op \(latest.id)"))
                } else {
                    anomalies.append(Anomaly(kind: .unexpectedValue, detail: "\(table)/\(key) holds \(value)"))
                }
            } else if value != latest.value, !fromUnknown {
                let found = isAbsent ? "no row" : value ?? "null"
                anomalies.append(Anomaly(kind: .lostWrite, detail: "\(table)/\(key): the latest acknowledged write is op \(latest.id) (\(latest.value ?? "")); every region holds \(found)"))
            }
        }
        return anomalies
    }

    /// Counters hold the sum of the acknowledged increments, give or take those of unknown
    /// outcome; grow-only items hold every acknowledged add; saved elements hold every
    /// acknowledged add never removed and none acknowledged removed.
    private func checkCarts() async throws -> [Anomaly] {
        var anomalies: [Anomaly] = []
        for key in Workload.cartKeys.map({ "cart-\($0)" }) {
            let operations = history.filter { $0.key == key }
            let region = TortureDeployment.regions[0]
            let final = try await read("cart", key, at: [region])[region]?.row
            let views = final?["views"]?.intValue ?? 0
            let increments = operations.filter { $0.kind == .increment }
            let sum = increments.filter { $0.outcome == .ok }.reduce(Int64(0)) { $0 + ($1.delta ?? 0) }
            let unknown = increments.filter { $0.outcome == .unknown }.compactMap(\.delta)
            let low = sum + unknown.filter { $0 < 0 }.reduce(0, +), high = sum + unknown.filter { $0 > 0 }.reduce(0, +)
            if !(low...high).contains(views) {
                anomalies.append(Anomaly(kind: .counterMismatch, detail: "\(key).views is \(views); acknowledged increments sum to \(sum), unknown ones allow \(low)...\(high)"))
            }
            let items = Set(final?["items"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            for add in operations where add.kind == .addItem && add.outcome == .ok {
                if let element = add.value, !items.contains(element) {
                    anomalies.append(Anomaly(kind: .setMismatch, detail: "\(key).items lacks \(element), acknowledged by op \(add.id)"))
                }
            }
            let saved = Set(final?["saved"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            for add in operations where add.kind == .save && add.outcome == .ok {
                guard let element = add.value else { continue }
                let removes = operations.filter { $0.kind == .unsave && $0.value == element && $0.outcome != .failed }
                if removes.isEmpty, !saved.contains(element) {
                    anomalies.append(Anomaly(kind: .setMismatch, detail: "\(key).saved lacks \(element), acknowledged by op \(add.id) and never removed"))
                }
                if removes.contains(where: { $0.outcome == .ok }), saved.contains(element) {
                    anomalies.append(Anomaly(kind: .setMismatch, detail: "\(key).saved holds \(element), whose removal was acknowledged"))
                }
            }
            let written = Set(operations.filter { $0.outcome != .failed }.compactMap(\.value))
            for element in items.union(saved) where !written.contains(element) {
                anomalies.append(Anomaly(kind: .unexpectedValue, detail: "\(key) holds element \(element), never written"))
            }
        }
        return anomalies
    }

    /// Token reads see at least their client's own acknowledged writes, and a client's reads
    /// of a row never go back.
    private func checkReads() -> [Anomaly] {
        var anomalies: [Anomaly] = []
        let writes = history.filter { ($0.kind == .upsert || $0.kind == .delete) }
        var stampOfValue: [String: Stamp] = [:]
        for write in writes where write.kind == .upsert { if let value = write.value, let stamp = Self.stamp(write) { stampOfValue[value] = stamp } }
        var lastSeen: [String: (Stamp, Int)] = [:]  // client/key → stamp of the last read's value
        for read in history.filter({ $0.kind == .read && $0.outcome == .ok }).sorted(by: { $0.start < $1.start }) {
            // The client's own writes of the row acknowledged before the read began.
            let own = writes.filter { $0.client == read.client && $0.key == read.key && $0.outcome == .ok && $0.end < read.start }
            let seen = read.value.flatMap { stampOfValue[$0] }
            if let mine = own.compactMap({ write in Self.stamp(write).map { (write, $0) } }).max(by: { $0.1 < $1.1 }) {
                let deletedSince = writes.contains { $0.key == read.key && $0.kind == .delete && $0.outcome != .failed && $0.start < read.end }
                if read.value == nil, mine.0.kind == .upsert, !deletedSince {
                    anomalies.append(Anomaly(kind: .staleTokenRead, detail: "read op \(read.id) of user_profile/\(read.key) found no row after op \(mine.0.id)"))
                } else if let seen, seen < mine.1 {
                    anomalies.append(Anomaly(kind: .staleTokenRead, detail: "read op \(read.id) of user_profile/\(read.key) saw \(read.value ?? "") from before op \(mine.0.id)"))
                }
            }
            let slot = "\(read.client)/\(read.key)"
            if let seen {
                if let (previous, id) = lastSeen[slot], seen < previous {
                    anomalies.append(Anomaly(kind: .nonMonotonicRead, detail: "read op \(read.id) of user_profile/\(read.key) saw \(read.value ?? ""), older than what read op \(id) saw"))
                }
                if (lastSeen[slot]?.0).map({ $0 < seen }) ?? true { lastSeen[slot] = (seen, read.id) }
            }
        }
        return anomalies
    }

    /// The logs: no epoch with writes of two regions in single-primary (fenced writes aside, no
    /// region writes at another's epoch), and no pinned content in a change topic.
    private func checkLogs() async throws -> [Anomaly] {
        var anomalies: [Anomaly] = []
        var originsByEpoch: [UInt64: Set<String>] = [:]
        // Every change event, for reading an anomaly's story after the brokers are gone.
        var dump = Data()
        defer { try? dump.write(to: deployment.directory.appendingPathComponent("changes.jsonl")) }
        let config = deployment.config
        for region in config.regions {
            let consumer = try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(bootstrapServers: region.kafka, groupID: "georep-torture-check"),
                logger: Logger(label: "georep.torture"))
            let partitions = (0..<Int32(config.partitions)).map { TopicPartition(topic: Topics.changes(region.id), partition: $0) }
            let ends = try await consumer.endOffsets(of: partitions)
            var pending = ends.filter { $0.value > 0 }
            try await consumer.assign(pending.keys.map { TopicPartitionOffset($0, offset: .beginning) })
            let deadline = ContinuousClock.now + .seconds(60)
            while !pending.isEmpty, ContinuousClock.now < deadline {
                for message in try await consumer.poll(maxMessages: 5_000, timeout: .milliseconds(200)) where !message.isPartitionEOF {
                    if let end = pending[message.topicPartition], message.offset + 1 >= end { pending[message.topicPartition] = nil }
                    guard let value = message.value else { continue }
                    dump += Data("{\"position\":\"\(message.topic):\(message.partition):\(message.offset)\",\"timestamp\":\(message.timestampMilliseconds ?? -1),\"event\":".utf8)
                    dump += value
                    dump += Data("}\n".utf8)
                    guard let event = try? ChangeEventCodec.decodeUnvalidated(value) else { continue }
                    if config.table(named: event.table)?.merge == .pinned {
                        anomalies.append(Anomaly(kind: .pinnedInChangeTopic, detail: "\(message.topic)@\(message.offset): a \(event.op.rawValue) of \(event.table)"))
                    }
                    originsByEpoch[event.epoch, default: []].insert(event.origin)
                }
            }
            await consumer.close()
        }
        if config.topology == .singlePrimary {
            for (epoch, origins) in originsByEpoch where origins.count > 1 {
                anomalies.append(Anomaly(kind: .twoPrimaries, detail: "epoch \(epoch): events of \(origins.sorted().joined(separator: ", "))"))
            }
        }
        return anomalies
    }

    /// Every region takes a write once healed, itself or by forwarding it.
    private func checkTakesWrites() async throws -> [Anomaly] {
        var anomalies: [Anomaly] = []
        for region in TortureDeployment.regions {
            let deadline = ContinuousClock.now + .seconds(30)
            var last = ""
            var taken = false
            while !taken, ContinuousClock.now < deadline {
                let reply = try? await client.send("PUT", deployment.address(region), NodeHTTPClient.rowPath("user_profile", "9999"), json: ["bio": .string("healed \(region)")])
                taken = reply?.status == 200
                last = reply.map { "\($0.status) \($0.error ?? "")" } ?? "no answer"
                if !taken { try await Task.sleep(for: .milliseconds(500)) }
            }
            if !taken { anomalies.append(Anomaly(kind: .noWrites, detail: "\(region): \(last)")) }
        }
        return anomalies
    }
}
