import GeorepModel
import GRDB

/// The store's own tables (named migrations, never edited once shipped) and the application
/// tables of the configuration (created, or extended with new columns, on open).
enum StoreSchema {
    /// The migrations of the `georep_*` tables.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 georep tables") { db in
            try db.execute(sql: """
                CREATE TABLE georep_region_config (
                    region_id TEXT PRIMARY KEY NOT NULL,
                    kafka TEXT NOT NULL,
                    http TEXT NOT NULL,
                    is_primary INTEGER NOT NULL DEFAULT 0,
                    is_accepting_writes INTEGER NOT NULL DEFAULT 1,
                    epoch INTEGER NOT NULL DEFAULT 0,
                    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
                CREATE TABLE georep_replication_status (
                    source_region TEXT NOT NULL,
                    target_region TEXT NOT NULL,
                    last_lsn INTEGER NOT NULL DEFAULT -1,
                    lag_records INTEGER NOT NULL DEFAULT 0,
                    lag_ms INTEGER NOT NULL DEFAULT 0,
                    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
                    PRIMARY KEY (source_region, target_region));
                CREATE TABLE georep_offsets (
                    topic TEXT NOT NULL,
                    partition INTEGER NOT NULL,
                    next_offset INTEGER NOT NULL,
                    PRIMARY KEY (topic, partition));
                CREATE TABLE georep_conflicts (
                    id INTEGER PRIMARY KEY,
                    table_name TEXT NOT NULL,
                    row_key TEXT NOT NULL,
                    key_json TEXT NOT NULL,
                    column_name TEXT,
                    winner_hlc INTEGER NOT NULL,
                    winner_origin TEXT NOT NULL,
                    winner_value TEXT NOT NULL,
                    loser_hlc INTEGER NOT NULL,
                    loser_origin TEXT NOT NULL,
                    loser_value TEXT NOT NULL,
                    detected_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
                CREATE UNIQUE INDEX georep_conflicts_once ON georep_conflicts (
                    table_name, row_key, ifnull(column_name, ''), winner_hlc, winner_origin, loser_hlc, loser_origin);
                CREATE TABLE georep_clock (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    high_water_mark INTEGER NOT NULL);
                INSERT INTO georep_clock (id, high_water_mark) VALUES (1, 0);
                CREATE TABLE georep_pinned_directory (
                    table_name TEXT NOT NULL,
                    row_key TEXT NOT NULL,
                    home_region TEXT NOT NULL,
                    PRIMARY KEY (table_name, row_key));
                CREATE TABLE georep_dead_letters (
                    id INTEGER PRIMARY KEY,
                    topic TEXT,
                    partition INTEGER,
                    "offset" INTEGER,
                    reason TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    recorded_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
                CREATE TABLE georep_tables (
                    table_name TEXT PRIMARY KEY NOT NULL,
                    merge TEXT NOT NULL,
                    key_columns TEXT NOT NULL);
                CREATE TABLE georep_columns (
                    table_name TEXT NOT NULL,
                    column_name TEXT NOT NULL,
                    type TEXT NOT NULL,
                    PRIMARY KEY (table_name, column_name));
                """)
        }
        migrator.registerMigration("v2 dead letter claims") { db in
            // Milliseconds since the epoch until which a publisher holds the letter.
            try db.execute(sql: "ALTER TABLE georep_dead_letters ADD COLUMN claimed_until INTEGER")
        }
        migrator.registerMigration("v3 rebuilt fences") { db in
            // The fence points whose rows this (old primary's) store has rebuilt, by epoch.
            try db.execute(sql: """
                CREATE TABLE georep_rebuilt_fences (
                    epoch INTEGER PRIMARY KEY,
                    rows INTEGER NOT NULL,
                    rebuilt_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)
                """)
        }
        return migrator
    }

    /// Creates the configured tables, or extends them with new columns; refuses other changes.
    ///
    /// - Returns: the names of the columns added, as `table.column`.
    static func prepareApplicationTables(_ db: Database, tables: [TableSQL]) throws -> [String] {
        var added: [String] = []
        for sql in tables {
            let table = sql.table
            let keyText = table.key.joined(separator: ",")
            if let stored = try Row.fetchOne(db, sql: "SELECT merge, key_columns FROM georep_tables WHERE table_name = ?", arguments: [table.name]) {
                let storedMerge: String = stored[0]
                let storedKey: String = stored[1]
                guard storedMerge == table.merge.rawValue else {
                    throw StoreError.incompatibleSchema(table: table.name, problem: "merge rule changed from \(storedMerge) to \(table.merge.rawValue); a merge rule cannot change on an existing store")
                }
                guard storedKey == keyText else {
                    throw StoreError.incompatibleSchema(table: table.name, problem: "key changed from (\(storedKey)) to (\(keyText)); a key cannot change on an existing store")
                }
                let storedTypes = try Dictionary(
                    Row.fetchAll(db, sql: "SELECT column_name, type FROM georep_columns WHERE table_name = ?", arguments: [table.name])
                        .map { (row: Row) -> (String, String) in (row[0], row[1]) },
                    uniquingKeysWith: { first, _ in first })
                for column in table.columns {
                    if let storedType = storedTypes[column.name] {
                        guard storedType == column.type.rawValue else {
                            throw StoreError.incompatibleSchema(table: table.name, problem: "column \(column.name) changed type from \(storedType) to \(column.type.rawValue); only new columns can be added")
                        }
                    } else {
                        try db.execute(sql: "ALTER TABLE \(quoted(sql.storageName)) ADD COLUMN \(quoted(column.name)) \(TableSQL.sqlType(column.type))")
                        try recordColumn(db, table: table.name, column: column)
                        added.append("\(table.name).\(column.name)")
                    }
                }
            } else {
                try db.execute(sql: sql.createTable)
                try db.execute(sql: "INSERT INTO georep_tables (table_name, merge, key_columns) VALUES (?, ?, ?)",
                               arguments: [table.name, table.merge.rawValue, keyText])
                for column in table.columns { try recordColumn(db, table: table.name, column: column) }
            }
            try db.execute(sql: "DROP VIEW IF EXISTS \(quoted(table.name))")
            try db.execute(sql: sql.createView)
        }
        return added
    }

    private static func recordColumn(_ db: Database, table: String, column: ColumnSchema) throws {
        try db.execute(sql: "INSERT INTO georep_columns (table_name, column_name, type) VALUES (?, ?, ?)",
                       arguments: [table, column.name, column.type.rawValue])
    }
}
