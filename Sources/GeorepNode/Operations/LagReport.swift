import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
public import GeorepModel
public import Logging

/// The replication lag of a deployment, per source region, target region and partition, as
/// `georep lag` prints it (like `kafka-consumer-groups --describe`): from Kafka the source
/// topics' end offsets and the committed offsets of each target's group `georep.apply.<target>`,
/// and from each target's node (`GET /v1/status`) its applied offsets and the age of its oldest
/// unapplied record.
public struct LagReport: Sendable, Codable {
    /// One source partition as seen by one target region.
    public struct Row: Sendable, Codable, Hashable {
        /// The source region.
        public var source: String
        /// The target (applying) region.
        public var target: String
        /// The source topic.
        public var topic: String
        /// The partition.
        public var partition: Int32
        /// The next offset the target applies: its node's or its group's committed offset, whichever is further.
        public var applied: Int64?
        /// The offset committed by `georep.apply.<target>`; nil when nothing was committed.
        public var committed: Int64?
        /// The partition's end offset.
        public var end: Int64?
        /// `end - applied`.
        public var lagRecords: Int64?
        /// The age of the oldest unapplied record, from the node; nil when the node is unreachable.
        public var lagMillis: Int64?

        enum CodingKeys: String, CodingKey {
            case source, target, topic, partition, applied, committed, end
            case lagRecords = "lag_records"
            case lagMillis = "lag_ms"
        }
    }

    /// The rows, by target, source and partition.
    public var rows: [Row]
    /// Problems met while collecting (an unreachable node or cluster).
    public var problems: [String]

    /// Collects the report of `config`'s deployment.
    public static func collect(config: GeorepConfig, http: NodeHTTPClient, logger: Logger) async -> LagReport {
        var problems: [String] = []
        let partitions = (0..<Int32(max(1, config.partitions)))
        // Each node's view.
        var nodeView: [String: [String: (applied: Int64, lagMillis: Int64)]] = [:]
        for target in config.regions {
            do {
                let reply = try await http.send("GET", target.http, "/v1/status")
                guard reply.status == 200, let status = NodeStatus.decode(reply.body) else {
                    problems.append("node \(target.id) at \(target.http): status \(reply.status)")
                    continue
                }
                var view: [String: (Int64, Int64)] = [:]
                for lag in status.lag {
                    for partition in lag.partitions { view["\(partition.topic)/\(partition.partition)"] = (partition.applied, partition.lagMillis) }
                }
                nodeView[target.id] = view
            } catch {
                problems.append("node \(target.id) at \(target.http) is unreachable: \(error)")
            }
        }
        // Kafka's view, one client per cluster.
        var ends: [TopicPartition: Int64] = [:]
        var committed: [String: [TopicPartition: Int64]] = [:]
        let clusters = Dictionary(grouping: config.regions, by: \.kafka)
        for (cluster, sources) in clusters.sorted(by: { $0.key < $1.key }) {
            let topicPartitions = sources.flatMap { source in partitions.map { TopicPartition(topic: Topics.changes(source.id), partition: $0) } }
            do {
                let probe = try KafkaConsumer(
                    configuration: config.consumerConfiguration(cluster, groupID: "georep.lag-report", clientID: "georep-lag"), logger: logger)
                ends.merge(try await probe.closing { try await $0.endOffsets(of: topicPartitions, timeout: .seconds(5)) }) { $1 }
            } catch {
                problems.append("cluster \(cluster): cannot read end offsets: \(error)")
            }
            for target in config.regions {
                do {
                    let group = try KafkaConsumer(
                        configuration: config.consumerConfiguration(cluster, groupID: Topics.applyGroup(target.id), clientID: "georep-lag"), logger: logger)
                    let offsets = try await group.closing { try await $0.committedOffsets(for: topicPartitions, timeout: .seconds(5)) }
                    committed[target.id, default: [:]].merge(offsets.compactMapValues { $0.isConcrete ? $0.rawValue : nil }) { $1 }
                } catch {
                    problems.append("cluster \(cluster): cannot read the offsets of group \(Topics.applyGroup(target.id)): \(error)")
                }
            }
        }
        var rows: [Row] = []
        for target in config.regions {
            for source in config.regions {
                for partition in partitions {
                    let topicPartition = TopicPartition(topic: Topics.changes(source.id), partition: partition)
                    let node = nodeView[target.id]?["\(topicPartition.topic)/\(partition)"]
                    let committedOffset = committed[target.id]?[topicPartition]
                    let end = ends[topicPartition]
                    // The node's sample is up to one sampling interval old; the group's commit
                    // follows each applied batch, so the larger of the two is the more recent.
                    let applied = [node?.applied, committedOffset].compactMap { $0 }.max() ?? (nodeView[target.id] == nil ? nil : 0)
                    rows.append(Row(
                        source: source.id, target: target.id, topic: topicPartition.topic, partition: partition,
                        applied: applied, committed: committedOffset, end: end,
                        lagRecords: end.flatMap { end in applied.map { max(0, end - $0) } }, lagMillis: node?.lagMillis))
                }
            }
        }
        return LagReport(rows: rows, problems: problems)
    }

    /// Total unapplied records of `source` at `target`.
    public func lagRecords(source: String, target: String) -> Int64 {
        rows.filter { $0.source == source && $0.target == target }.compactMap(\.lagRecords).reduce(0, +)
    }

    /// The report as an aligned text table, then its problems.
    public var table: String {
        let header = ["SOURCE", "TARGET", "TOPIC", "PARTITION", "APPLIED", "COMMITTED", "END", "LAG_RECORDS", "LAG_MS"]
        func text(_ value: Int64?) -> String { value.map { "\($0)" } ?? "-" }
        let lines = [header] + rows.map { row in
            [row.source, row.target, row.topic, "\(row.partition)", text(row.applied), text(row.committed), text(row.end),
             text(row.lagRecords), text(row.lagMillis)]
        }
        let widths = header.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        var output = lines.map { line in
            line.enumerated().map { column, cell in cell.padding(toLength: widths[column], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        output += problems.map { "warning: \($0)" }
        return output.joined(separator: "\n")
    }

    /// The report as JSON.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}
