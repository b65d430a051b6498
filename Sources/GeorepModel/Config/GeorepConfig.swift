/// How regions share writes.
public enum Topology: String, Sendable, Hashable, CaseIterable {
    /// Every region accepts writes.
    case activeActive = "active-active"
    /// Writes go to the primary region.
    case singlePrimary = "single-primary"
}

/// Where a region's node keeps its store.
public enum StoreLocation: Sendable, Hashable, CustomStringConvertible {
    /// An SQLite file (`sqlite:PATH`).
    case sqlite(path: String)
    /// A PostgreSQL database (`postgres://...` or `postgresql://...`).
    case postgres(url: String)

    /// Parses `sqlite:PATH` or a `postgres://` URL; nil for anything else.
    public init?(parsing text: String) {
        if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty else { return nil }
            self = .sqlite(path: path)
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else {
            return nil
        }
    }

    /// The configuration form, a PostgreSQL URL's password replaced by `***`: what errors and
    /// logs may show.
    public var description: String {
        switch self {
        case let .sqlite(path): "sqlite:\(path)"
        case let .postgres(url): Self.hidingPassword(url)
        }
    }

    /// `url` with the password of its `user:password@` part replaced by `***`.
    static func hidingPassword(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex { "/?#".contains($0) } ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") else { return url }
        return String(url[..<rest.index(after: colon)]) + "***" + String(url[at...])
    }
}

/// A `host:port` endpoint.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address.
    public var host: String
    /// The TCP port.
    public var port: UInt16

    /// Makes an endpoint.
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (an IPv6 host in brackets); nil when malformed.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    /// `host:port`.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// One region of the deployment.
public struct RegionConfig: Sendable, Hashable {
    /// The region id, e.g. `us-east-1`.
    public var id: String
    /// The bootstrap servers of this region's Kafka cluster.
    public var kafka: String
    /// Where this region's node serves HTTP.
    public var http: HostPort
    /// This region's store.
    public var store: StoreLocation
    /// librdkafka properties of every client of this region's cluster (`kafka_properties`:
    /// security, timeouts), over the file's top-level ones.
    public var kafkaProperties: [String: String]

    /// Makes a region.
    public init(id: String, kafka: String, http: HostPort, store: StoreLocation, kafkaProperties: [String: String] = [:]) {
        self.id = id
        self.kafka = kafka
        self.http = http
        self.store = store
        self.kafkaProperties = kafkaProperties
    }
}

/// The whole configuration file (`docs/configuration.md`).
public struct GeorepConfig: Sendable, Hashable {
    /// Default number of partitions of each change topic.
    public static let defaultPartitions = 6
    /// Default bound on how far an event's HLC may be ahead of its record's timestamp in the log.
    public static let defaultHLCMaxOffsetMillis: UInt64 = 60_000
    /// Default time window within which concurrent writes from two regions count as a conflict.
    public static let defaultConflictWindowMillis: UInt64 = 1_000
    /// How far a node's clock may be from the other regions' before it takes no writes (`max_clock_offset_ms`).
    public static let defaultMaxClockOffsetMillis: UInt64 = 500

    /// How regions share writes.
    public var topology: Topology
    /// The primary region (single-primary; optional in active-active).
    public var primary: String?
    /// The regions, in the order written.
    public var regions: [RegionConfig]
    /// The application tables, in the order written.
    public var tables: [TableSchema] {
        didSet { tableIndex = Self.index(tables) }
    }
    private var tableIndex: [String: Int]
    /// Partitions of each change topic.
    public var partitions: Int
    /// Bound on how far an event's HLC may be ahead of its record's timestamp in the log, in ms (`hlc_max_offset_ms`).
    public var hlcMaxOffsetMillis: UInt64
    /// Writes from two regions closer than this in physical time are recorded as conflicts.
    public var conflictWindowMillis: UInt64
    /// A node whose wall clock is further than this from the clocks of a majority of the other
    /// regions' nodes, as it measures them, takes no writes (`max_clock_offset_ms`).
    public var maxClockOffsetMillis: UInt64 = defaultMaxClockOffsetMillis
    /// Bootstrap servers of the cluster holding the control topic `georep.control` and the
    /// directory `georep.directory` (`control_kafka`); nil for the primary's cluster, or the first region's.
    public var controlKafka: String?

    /// The cluster that holds `georep.control` and `georep.directory`: `control_kafka`, else the
    /// configured primary's, else the first region's.
    public var controlCluster: String {
        controlKafka ?? (primary.flatMap { region(id: $0) } ?? regions.first)?.kafka ?? "127.0.0.1:9092"
    }
    /// librdkafka properties of every Kafka client georep makes (top-level `kafka_properties`),
    /// such as `security.protocol` and the SASL and TLS settings.
    public var kafkaProperties: [String: String] = [:]

    /// Makes a configuration; `GeorepConfig.parse(yaml:)` builds and validates one from a file.
    public init(
        topology: Topology, primary: String?, regions: [RegionConfig], tables: [TableSchema],
        partitions: Int = defaultPartitions, hlcMaxOffsetMillis: UInt64 = defaultHLCMaxOffsetMillis,
        conflictWindowMillis: UInt64 = defaultConflictWindowMillis
    ) {
        self.topology = topology
        self.primary = primary
        self.regions = regions
        self.tables = tables
        self.tableIndex = Self.index(tables)
        self.partitions = partitions
        self.hlcMaxOffsetMillis = hlcMaxOffsetMillis
        self.conflictWindowMillis = conflictWindowMillis
    }

    /// The table named `name`, if declared.
    public func table(named name: String) -> TableSchema? {
        tableIndex[name].map { tables[$0] }
    }

    private static func index(_ tables: [TableSchema]) -> [String: Int] {
        Dictionary(tables.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The region with id `id`, if declared.
    public func region(id: String) -> RegionConfig? {
        regions.first { $0.id == id }
    }

    /// The librdkafka properties of the clients of the cluster at `bootstrapServers`: the
    /// top-level ones, with those of the regions on that cluster over them, and `extra` (the
    /// caller's own) over all.
    public func kafkaProperties(for bootstrapServers: String, extra: [String: String] = [:]) -> [String: String] {
        let layers = [kafkaProperties] + regions.filter { $0.kafka == bootstrapServers }.map(\.kafkaProperties) + [extra]
        return layers.reduce(into: [:]) { properties, layer in properties.merge(layer) { _, over in over } }
    }
}

extension GeorepConfig {
    /// The configuration with every region's change topics and the control topic on the cluster
    /// at `bootstrapServers` (a development broker, whose port is chosen when it starts).
    public func onOneCluster(_ bootstrapServers: String) -> GeorepConfig {
        var config = self
        config.regions = regions.map { region in
            var region = region
            region.kafka = bootstrapServers
            return region
        }
        config.controlKafka = bootstrapServers
        return config
    }
}
