import GeorepModel
import Logging
import PostgresNIO

/// The store's own tables in PostgreSQL, as a numbered, append-only list of migrations
/// recorded in `georep_migrations`, and the application tables of the configuration.
///
/// - Important: A migration is never edited once shipped: a change is a new migration at the
///   end of the list.
enum PostgresSchema {
    /// A migration: its number, a name, and its statements.
    struct Migration: Sendable {
        var version: Int
        var name: String
        var statements: [String]
    }

    /// Every migration, in order.
    static let migrations: [Migration] = [
        Migration(version: 1, name: "georep tables", statements: [
            """
            CREATE TABLE georep_region_config (
                region_id TEXT PRIMARY KEY,
                kafka TEXT NOT NULL,
                http TEXT NOT NULL,
                is_primary BOOLEAN NOT NULL DEFAULT false,
                is_accepting_writes BOOLEAN NOT NULL DEFAULT true,
                epoch BIGINT NOT NULL DEFAULT 0,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now())
            """,
            """
            CREATE TABLE georep_replication_status (
                source_region TEXT NOT NULL,
                target_region TEXT NOT NULL,
                last_lsn BIGINT NOT NULL DEFAULT -1,
                lag_records BIGINT NOT NULL DEFAULT 0,
                lag_ms BIGINT NOT NULL DEFAULT 0,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (source_region, target_region))
            """,
            """
            CREATE TABLE georep_offsets (
                topic TEXT NOT NULL,
                partition INTEGER NOT NULL,
                next_offset BIGINT NOT NULL,
                PRIMARY KEY (topic, partition))
            """,
            """
            CREATE TABLE georep_conflicts (
                id BIGSERIAL PRIMARY KEY,
                table_name TEXT NOT NULL,
                row_key TEXT NOT NULL,
                key_json TEXT NOT NULL,
                column_name TEXT,
                winner_hlc BIGINT NOT NULL,
                winner_origin TEXT NOT NULL,
                winner_value TEXT NOT NULL,
                loser_hlc BIGINT NOT NULL,
                loser_origin TEXT NOT NULL,
                loser_value TEXT NOT NULL,
                detected_at TIMESTAMPTZ NOT NULL DEFAULT now())
            """,
            """
            CREATE UNIQUE INDEX georep_conflicts_once ON georep_conflicts (
                table_name, row_key, coalesce(column_name, ''), winner_hlc, winner_origin, loser_hlc, loser_origin)
            """,
            "CREATE TABLE georep_clock (id INTEGER PRIMARY KEY CHECK (id = 1), high_water_mark BIGINT NOT NULL)",
            "INSERT INTO georep_clock (id, high_water_mark) VALUES (1, 0)",
            """
            CREATE TABLE georep_pinned_directory (
                table_name TEXT NOT NULL,
                row_key TEXT NOT NULL,
                home_region TEXT NOT NULL,
                PRIMARY KEY (table_name, row_key))
            """,
            """
            CREATE TABLE georep_dead_letters (
                id BIGSERIAL PRIMARY KEY,
                topic TEXT,
                partition INTEGER,
                "offset" BIGINT,
                reason TEXT NOT NULL,
                payload BYTEA NOT NULL,
                recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())
            """,
            "CREATE TABLE georep_tables (table_name TEXT PRIMARY KEY, merge TEXT NOT NULL, key_columns TEXT NOT NULL)",
            """
            CREATE TABLE georep_columns (
                table_name TEXT NOT NULL,
                column_name TEXT NOT NULL,
                type TEXT NOT NULL,
                PRIMARY KEY (table_name, column_name))
            """,
        ]),
        Migration(version: 2, name: "dead letter claims", statements: [
            // Until when a publisher holds the letter (by the server's clock, shared by every process).
            "ALTER TABLE georep_dead_letters ADD COLUMN claimed_until TIMESTAMPTZ",
        ]),
        Migration(version: 3, name: "rebuilt fences", statements: [
            // The fence points whose rows this (old primary's) store has rebuilt, by epoch.
            """
            CREATE TABLE georep_rebuilt_fences (
                epoch BIGINT PRIMARY KEY,
                rows INTEGER NOT NULL,
                rebuilt_at TIMESTAMPTZ NOT NULL DEFAULT now())
            """,
        ]),
    ]

    /// Serializes schema changes of processes opening the same database at once.
    private static let schemaLock: Int64 = 0x6765_6F72_6570  // "georep"

    /// Applies the migrations not yet recorded, then creates or extends the application tables,
    /// in one transaction.
    ///
    /// - Returns: the columns added to existing tables, as `table.column`.
    static func prepare(_ connection: PostgresConnection, tables: [PostgresTableSQL], logger: Logger) async throws -> [String] {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(schemaLock))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS georep_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            var applied: Set<Int> = []
            for try await version in try await connection.query("SELECT version FROM georep_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO georep_migrations (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
                logger.info("applied store migration", metadata: ["version": .stringConvertible(migration.version), "name": .string(migration.name)])
            }
            let added = try await prepareApplicationTables(connection, tables: tables, logger: logger)
            try await connection.query("COMMIT", logger: logger)
            return added
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    private static func prepareApplicationTables(_ connection: PostgresConnection, tables: [PostgresTableSQL], logger: Logger) async throws -> [String] {
        var added: [String] = []
        for sql in tables {
            let table = sql.table
            var stored: StoredTableShape?
            for try await (merge, key) in try await connection.query(
                "SELECT merge, key_columns FROM georep_tables WHERE table_name = \(table.name)", logger: logger
            ).decode((String, String).self) {
                stored = StoredTableShape(merge: merge, keyColumns: key, types: [:])
            }
            if var stored {
                for try await (column, type) in try await connection.query(
                    "SELECT column_name, type FROM georep_columns WHERE table_name = \(table.name)", logger: logger
                ).decode((String, String).self) {
                    stored.types[column] = type
                }
                for column in try stored.newColumns(of: table) {
                    try await connection.query(PostgresQuery(unsafeSQL: sql.addColumn(column)), logger: logger)
                    try await recordColumn(connection, table: table.name, column: column, logger: logger)
                    added.append("\(table.name).\(column.name)")
                }
            } else {
                try await connection.query(PostgresQuery(unsafeSQL: sql.createTable), logger: logger)
                try await connection.query("""
                    INSERT INTO georep_tables (table_name, merge, key_columns)
                    VALUES (\(table.name), \(table.merge.rawValue), \(StoredTableShape.keyText(table)))
                    """, logger: logger)
                for column in table.columns { try await recordColumn(connection, table: table.name, column: column, logger: logger) }
            }
            try await connection.query(PostgresQuery(unsafeSQL: "DROP VIEW IF EXISTS \(quoted(table.name))"), logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: sql.createView), logger: logger)
        }
        return added
    }

    private static func recordColumn(_ connection: PostgresConnection, table: String, column: ColumnSchema, logger: Logger) async throws {
        try await connection.query(
            "INSERT INTO georep_columns (table_name, column_name, type) VALUES (\(table), \(column.name), \(column.type.rawValue))",
            logger: logger)
    }
}
