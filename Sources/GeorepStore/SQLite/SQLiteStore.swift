import Foundation
public import GeorepModel
import GRDB
public import Logging

/// The embedded store: one SQLite file in WAL mode, accessed through GRDB.
///
/// - Important: Open one `SQLiteStore` per file and process; all methods are thread-safe
///   (writes are serialized by GRDB, reads run concurrently in WAL mode).
public final class SQLiteStore: ReplicaStore {
    /// Throughput settings applied to every connection.
    public struct Settings: Sendable, Hashable {
        /// `PRAGMA synchronous`: NORMAL is durable across process crashes in WAL mode and
        /// may lose the last transactions on power loss (they are re-applied from Kafka).
        public var synchronous = "NORMAL"
        /// Page cache per connection, in KiB.
        public var cacheSizeKiB = 65_536
        /// Pages of WAL past which the WAL is started over: a checkpoint in the writer's turn
        /// copies the last frames the background checkpoints (``WALCheckpointer``) left.
        public var walRestartPages = 4_000
        /// How long a connection waits for a lock held by another process, in seconds.
        public var busyTimeoutSeconds: Double = 5

        /// The defaults.
        public init() {}
    }

    /// The configuration whose tables the store holds.
    public let config: GeorepConfig
    /// The SQLite file.
    public let path: String
    let pool: DatabasePool
    let checkpointer: WALCheckpointer
    let tables: [String: TableSQL]
    let logger: Logger

    /// Opens (creating or migrating) the store at `path` for the tables of `config`.
    ///
    /// - Throws: `StoreError.incompatibleSchema` when the configuration changes a stored table
    ///   in a way other than adding tables or columns; a GRDB `DatabaseError` on SQLite failures.
    public init(path: String, config: GeorepConfig, settings: Settings = Settings(), logger: Logger = Logger(label: "georep.store.sqlite")) throws {
        self.config = config
        self.path = path
        self.logger = logger
        let tableSQL = config.tables.map(TableSQL.init(table:))
        self.tables = Dictionary(tableSQL.map { ($0.table.name, $0) }, uniquingKeysWith: { first, _ in first })

        var configuration = Configuration()
        configuration.label = "georep"
        configuration.busyMode = .timeout(settings.busyTimeoutSeconds)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(settings.synchronous == "FULL" ? "FULL" : "NORMAL")")
            try db.execute(sql: "PRAGMA cache_size = -\(max(1, settings.cacheSizeKiB))")
            // The checkpointer copies the WAL back on its own thread.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try StoreSchema.migrator.migrate(pool)
        let added = try pool.write { db in try StoreSchema.prepareApplicationTables(db, tables: tableSQL) }
        if !added.isEmpty {
            logger.info("added columns to existing tables", metadata: ["columns": .string(added.joined(separator: ", "))])
        }
        checkpointer = try WALCheckpointer(
            path: path, writer: pool, restartPages: max(1, settings.walRestartPages),
            busyTimeoutSeconds: settings.busyTimeoutSeconds, logger: logger)
        logger.debug("opened SQLite store", metadata: ["tables": .stringConvertible(tableSQL.count)])
    }

    /// Closes the file; the store cannot be used afterwards.
    public func close() async throws {
        try await checkpointer.stop()
        try pool.close()
    }

    deinit {
        checkpointer.requestStop()
    }

    func tableSQL(_ name: String) throws(StoreError) -> TableSQL {
        guard let sql = tables[name] else { throw .unknownTable(name) }
        return sql
    }
}
