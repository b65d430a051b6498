import Foundation
public import GeorepModel
import GRDB

/// The pinned directory and the region tables.
extension SQLiteStore {
    /// The home region of a pinned row, from the directory.
    public func pinnedHome(table: String, key: [String: JSONValue]) async throws -> String? {
        let schema = try tableSQL(table).table
        return try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT home_region FROM georep_pinned_directory WHERE table_name = ? AND row_key = ?",
                                arguments: [table, schema.keyText(key)])
        }
    }

    /// Records a pinned row's home region in the directory, unless it names one already: the
    /// first claim of a row wins.
    public func recordPinnedHome(table: String, key: [String: JSONValue], region: String) async throws {
        let schema = try tableSQL(table).table
        try await pool.write { db in try self.recordPinnedHome(table: schema, key: key, region: region, in: db) }
    }

    func recordPinnedHome(table: TableSchema, key: [String: JSONValue], region: String, in db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO georep_pinned_directory (table_name, row_key, home_region) VALUES (?, ?, ?)
            ON CONFLICT (table_name, row_key) DO NOTHING
            """).execute(arguments: [table.name, table.keyText(key), region])
    }

    // MARK: Regions and replication status

    /// Inserts or replaces regions' rows of `georep_region_config`.
    public func saveRegionConfigs(_ records: [RegionConfigRecord]) async throws {
        let now = Self.timestamp(Date())
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO georep_region_config (region_id, kafka, http, is_primary, is_accepting_writes, epoch, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (region_id) DO UPDATE SET kafka = excluded.kafka, http = excluded.http, is_primary = excluded.is_primary,
                    is_accepting_writes = excluded.is_accepting_writes, epoch = excluded.epoch, updated_at = excluded.updated_at
                """)
            for record in records {
                try statement.execute(arguments: [record.regionID, record.kafka, record.http, record.isPrimary,
                                                  record.isAcceptingWrites, Int64(clamping: record.epoch), now])
            }
        }
    }

    /// The rows of `georep_region_config`, by region id.
    public func regionConfigs() async throws -> [RegionConfigRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT region_id, kafka, http, is_primary, is_accepting_writes, epoch FROM georep_region_config ORDER BY region_id")
                .map { row in
                    let epoch: Int64 = row[5]
                    return RegionConfigRecord(regionID: row[0], kafka: row[1], http: row[2], isPrimary: row[3],
                                              isAcceptingWrites: row[4], epoch: UInt64(max(0, epoch)))
                }
        }
    }

    /// Inserts or replaces rows of `georep_replication_status`.
    public func saveReplicationStatus(_ records: [ReplicationStatusRecord]) async throws {
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO georep_replication_status (source_region, target_region, last_lsn, lag_records, lag_ms, updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (source_region, target_region) DO UPDATE SET last_lsn = excluded.last_lsn,
                    lag_records = excluded.lag_records, lag_ms = excluded.lag_ms, updated_at = excluded.updated_at
                """)
            for record in records {
                try statement.execute(arguments: [record.sourceRegion, record.targetRegion, record.lastLSN, record.lagRecords,
                                                  record.lagMillis, Self.timestamp(record.updatedAt)])
            }
        }
    }

    /// The rows of `georep_replication_status`, by source then target region.
    public func replicationStatus() async throws -> [ReplicationStatusRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT source_region, target_region, last_lsn, lag_records, lag_ms, updated_at
                FROM georep_replication_status ORDER BY source_region, target_region
                """).map { row in
                let updated: String = row[5]
                return ReplicationStatusRecord(sourceRegion: row[0], targetRegion: row[1], lastLSN: row[2], lagRecords: row[3],
                                               lagMillis: row[4], updatedAt: Self.date(updated) ?? Date(timeIntervalSince1970: 0))
            }
        }
    }

    /// UTC time as `YYYY-MM-DDTHH:MM:SS.sssZ`, which SQLite's date functions read.
    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    static func date(_ text: String) -> Date? {
        try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}
