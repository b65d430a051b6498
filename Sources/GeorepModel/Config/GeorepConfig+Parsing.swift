import Foundation
import Yams

extension GeorepConfig {
    /// Reads and validates the YAML configuration file at `path`.
    public static func load(path: String) throws(ConfigError) -> GeorepConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, line: nil, problem: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses and validates YAML configuration text; `file` only names it in errors.
    public static func parse(yaml: String, file: String? = nil) throws(ConfigError) -> GeorepConfig {
        try ConfigParser(file: file).parse(yaml)
    }
}

/// Builds a `GeorepConfig` from YAML nodes, failing at the first problem with its line.
private struct ConfigParser {
    let file: String?

    private static let topLevelKeys: Set<String> = [
        "topology", "primary", "regions", "tables", "partitions", "hlc_max_offset_ms", "max_clock_offset_ms", "conflict_window_ms",
        "control_kafka", "kafka_properties",
    ]
    private static let regionKeys: Set<String> = ["id", "kafka", "http", "store", "kafka_properties"]
    private static let tableKeys: Set<String> = ["key", "merge", "columns"]

    func parse(_ yaml: String) throws(ConfigError) -> GeorepConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else { throw fail(nil, "the file is empty") }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw yamlFailure(error)
        } catch {
            throw fail(nil, "not valid YAML: \(error)")
        }
        let top = try mapping(root, "the top level")
        try checkKeys(top, allowed: Self.topLevelKeys, in: "the top level")

        let topologyNode = try required(top, "topology", in: "the top level")
        let topologyText = try string(topologyNode, "topology")
        guard let topology = Topology(rawValue: topologyText) else {
            throw fail(topologyNode, "unknown topology '\(topologyText)'; expected active-active or single-primary")
        }
        let primaryNode = top["primary"]
        let primary = try primaryNode.map { node throws(ConfigError) in try string(node, "primary") }

        let regions = try parseRegions(try required(top, "regions", in: "the top level"))
        if let primary, !regions.contains(where: { $0.id == primary }) {
            throw fail(primaryNode, "primary '\(primary)' is not one of the regions")
        }
        if topology == .singlePrimary, primary == nil {
            throw fail(topologyNode, "topology single-primary needs a primary region")
        }
        let tables = try parseTables(try required(top, "tables", in: "the top level"))

        let partitions = try integer(top["partitions"], "partitions", range: 1...10_000) ?? GeorepConfig.defaultPartitions
        let maxOffset = try integer(top["hlc_max_offset_ms"], "hlc_max_offset_ms", range: 1...86_400_000)
            .map(UInt64.init) ?? GeorepConfig.defaultHLCMaxOffsetMillis
        let clockOffset = try integer(top["max_clock_offset_ms"], "max_clock_offset_ms", range: 1...86_400_000)
            .map(UInt64.init) ?? GeorepConfig.defaultMaxClockOffsetMillis
        let window = try integer(top["conflict_window_ms"], "conflict_window_ms", range: 0...86_400_000)
            .map(UInt64.init) ?? GeorepConfig.defaultConflictWindowMillis
        let controlNode = top["control_kafka"]
        let controlKafka = try controlNode.map { node throws(ConfigError) in try string(node, "control_kafka") }
        if let controlNode, controlKafka?.isEmpty == true { throw fail(controlNode, "control_kafka is empty") }
        var config = GeorepConfig(
            topology: topology, primary: primary, regions: regions, tables: tables,
            partitions: partitions, hlcMaxOffsetMillis: maxOffset, conflictWindowMillis: window)
        config.controlKafka = controlKafka
        config.maxClockOffsetMillis = clockOffset
        config.kafkaProperties = try top["kafka_properties"].map { node throws(ConfigError) in try kafkaProperties(node, "kafka_properties") } ?? [:]
        return config
    }

    private func parseRegions(_ node: Node) throws(ConfigError) -> [RegionConfig] {
        guard let items = node.sequence else { throw fail(node, "regions must be a list") }
        guard !items.isEmpty else { throw fail(node, "regions is empty; declare at least one region") }
        var regions: [RegionConfig] = []
        for item in items {
            let fields = try mapping(item, "a region")
            try checkKeys(fields, allowed: Self.regionKeys, in: "a region")
            let idNode = try required(fields, "id", in: "a region")
            let id = try string(idNode, "region id")
            guard RegionID.isValid(id) else {
                throw fail(idNode, "region id '\(id)' must be 1 to 100 characters of letters, digits, '.', '_' or '-'")
            }
            guard !regions.contains(where: { $0.id == id }) else { throw fail(idNode, "region id '\(id)' is declared twice") }
            let kafkaNode = try required(fields, "kafka", in: "region \(id)")
            let kafka = try string(kafkaNode, "kafka")
            guard !kafka.isEmpty else { throw fail(kafkaNode, "kafka of region \(id) is empty") }
            let httpNode = try required(fields, "http", in: "region \(id)")
            guard let http = HostPort(parsing: try string(httpNode, "http")) else {
                throw fail(httpNode, "http of region \(id) must be host:port")
            }
            if http.port != 0, let other = regions.first(where: { $0.http == http }) {
                throw fail(httpNode, "http \(http) of region \(id) is also region \(other.id)'s: each region's node needs its own address")
            }
            let storeNode = try required(fields, "store", in: "region \(id)")
            guard let store = StoreLocation(parsing: try string(storeNode, "store")) else {
                throw fail(storeNode, "store of region \(id) must be sqlite:PATH or a postgres:// URL")
            }
            let properties = try fields["kafka_properties"].map { node throws(ConfigError) in
                try kafkaProperties(node, "kafka_properties of region \(id)")
            } ?? [:]
            for other in regions where other.kafka == kafka {
                for (name, value) in properties where other.kafkaProperties[name].map({ $0 != value }) ?? false {
                    throw fail(fields["kafka_properties"], "regions \(other.id) and \(id) share the cluster \(kafka) but set \(name) differently")
                }
            }
            regions.append(RegionConfig(id: id, kafka: kafka, http: http, store: store, kafkaProperties: properties))
        }
        return regions
    }

    private func parseTables(_ node: Node) throws(ConfigError) -> [TableSchema] {
        let entries = try mapping(node, "tables")
        guard !entries.isEmpty else { throw fail(node, "tables is empty; declare at least one table") }
        var tables: [TableSchema] = []
        for (nameNode, body) in entries {
            let name = try string(nameNode, "a table name")
            let fields = try mapping(body, "table \(name)")
            try checkKeys(fields, allowed: Self.tableKeys, in: "table \(name)")

            let keyNode = try required(fields, "key", in: "table \(name)")
            let keyItems: [Node] = keyNode.sequence.map(Array.init) ?? [keyNode]
            var key: [String] = []
            for item in keyItems { key.append(try string(item, "a key column of table \(name)")) }

            let mergeNode = try required(fields, "merge", in: "table \(name)")
            let mergeText = try string(mergeNode, "merge")
            guard let merge = MergeRule(rawValue: mergeText) else {
                throw fail(mergeNode, "unknown merge rule '\(mergeText)' for table \(name); expected lww, lww-columns or pinned")
            }

            let columnsNode = try required(fields, "columns", in: "table \(name)")
            var columns: [ColumnSchema] = []
            for (columnNode, typeNode) in try mapping(columnsNode, "columns of table \(name)") {
                let column = try string(columnNode, "a column name")
                let typeText = try string(typeNode, "the type of column \(column)")
                guard let type = ColumnType(rawValue: typeText) else {
                    let known = ColumnType.allCases.map(\.rawValue).joined(separator: ", ")
                    throw fail(typeNode, "unknown type '\(typeText)' for column \(column) of table \(name); expected one of \(known)")
                }
                columns.append(ColumnSchema(name: column, type: type))
            }
            let table = TableSchema(name: name, key: key, merge: merge, columns: columns)
            if let problem = table.problems().first {
                throw fail(problem.contains("key column") ? keyNode : nameNode, problem)
            }
            tables.append(table)
        }
        return tables
    }

    // MARK: Node helpers

    private func fail(_ node: Node?, _ problem: String) -> ConfigError {
        ConfigError(file: file, line: node?.mark?.line, problem: problem)
    }

    private func yamlFailure(_ error: YamlError) -> ConfigError {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            ConfigError(file: file, line: mark.line, problem: "not valid YAML: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            ConfigError(file: file, line: context.mark.line, problem: "duplicate key '\(duplicates.sorted().joined(separator: "', '"))' in a mapping")
        default:
            ConfigError(file: file, line: nil, problem: "not valid YAML: \(error)")
        }
    }

    private func mapping(_ node: Node, _ what: String) throws(ConfigError) -> Node.Mapping {
        guard let mapping = node.mapping else { throw fail(node, "\(what) must be a mapping") }
        return mapping
    }

    private func string(_ node: Node, _ what: String) throws(ConfigError) -> String {
        guard let scalar = node.scalar else { throw fail(node, "\(what) must be a single value") }
        return scalar.string
    }

    private func required(_ mapping: Node.Mapping, _ key: String, in what: String) throws(ConfigError) -> Node {
        guard let node = mapping[key] else {
            throw ConfigError(file: file, line: mapping.mark?.line, problem: "\(what) is missing '\(key)'")
        }
        return node
    }

    private func checkKeys(_ mapping: Node.Mapping, allowed: Set<String>, in what: String) throws(ConfigError) {
        for keyNode in mapping.keys {
            let key = try string(keyNode, "a key")
            guard allowed.contains(key) else {
                let known = allowed.sorted().joined(separator: ", ")
                throw fail(keyNode, "unknown key '\(key)' in \(what); expected one of \(known)")
            }
        }
    }

    /// librdkafka properties georep sets itself: changing them would break its guarantees
    /// (an applier must never skip lost records, a writer's acknowledgement means all replicas).
    static let reservedKafkaProperties: Set<String> = [
        "bootstrap.servers", "metadata.broker.list", "group.id", "enable.auto.commit", "enable.auto.offset.store",
        "auto.offset.reset", "enable.partition.eof", "enable.idempotence", "acks", "request.required.acks", "transactional.id",
    ]

    /// A mapping of librdkafka property names to single values (given to librdkafka as text).
    private func kafkaProperties(_ node: Node, _ what: String) throws(ConfigError) -> [String: String] {
        var properties: [String: String] = [:]
        for (nameNode, valueNode) in try mapping(node, what) {
            let name = try string(nameNode, "a property name in \(what)")
            guard !name.isEmpty else { throw fail(nameNode, "\(what) names an empty property") }
            guard !Self.reservedKafkaProperties.contains(name) else {
                throw fail(nameNode, "\(what) cannot set \(name): georep sets it itself")
            }
            properties[name] = try string(valueNode, "\(name) in \(what)")
        }
        return properties
    }

    private func integer(_ node: Node?, _ what: String, range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let node else { return nil }
        guard let value = Int(try string(node, what)), range.contains(value) else {
            throw fail(node, "\(what) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}

/// Region ids, which appear in Kafka topic names and OR-Set tags.
enum RegionID {
    /// Whether `id` is usable in a topic name: letters, digits, `.`, `_`, `-`.
    static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 100 && id.utf8.allSatisfy(isValid)
    }

    /// Whether `byte` may stand in a region id: a letter, a digit, `.`, `_` or `-`.
    static func isValid(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2E || byte == 0x5F || byte == 0x2D
    }
}
