import Foundation
public import GeorepLog
public import GeorepModel
import GRDB

/// Reads of the merged rows, the positions, the conflicts and the high-water mark.
extension SQLiteStore {
    /// The stored positions: the next offset to consume per source topic partition.
    public func positions() async throws -> [TopicPartition: Int64] {
        try await pool.read { db in try self.loadPositions(db) }
    }

    /// The visible row, or nil when it is absent or deleted.
    public func row(table: String, key: [String: JSONValue]) async throws -> [String: JSONValue]? {
        try await rowState(table: table, key: key).view
    }

    /// The row's merge state (empty for a row never written).
    ///
    /// - Throws: `StoreError.unknownTable`, or `EventRejection.keyMismatch` naming what is wrong with the key.
    public func rowState(table: String, key: [String: JSONValue]) async throws -> RowState {
        let sql = try tableSQL(table)
        try sql.table.checkKey(key)
        let state = try await pool.read { db in try self.loadState(sql, key: key, using: db.cachedStatement(sql: sql.selectState)) }
        return RowState(table: sql.table, key: key, state: state ?? RowMergeState())
    }

    /// Every visible row of a table, in key order.
    public func snapshot(table: String) async throws -> [[String: JSONValue]] {
        let sql = try tableSQL(table)
        return try await pool.read { db in
            var rows: [[String: JSONValue]] = []
            let cursor = try Row.fetchCursor(db, sql: sql.selectSnapshot)
            while let stored = try cursor.next() {
                var key: [String: JSONValue] = [:]
                for (index, column) in sql.table.key.enumerated() {
                    key[column] = try sql.keyValue(stored[index], column: column)
                }
                let state = try sql.mergeState(from: stored, start: sql.table.key.count)
                if let view = RowState(table: sql.table, key: key, state: state).view { rows.append(view) }
            }
            return rows
        }
    }

    /// The number of recorded conflicts.
    public func conflictCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM georep_conflicts") ?? 0 }
    }

    /// The most recent recorded conflicts, newest first.
    public func conflicts(limit: Int) async throws -> [ConflictRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, table_name, key_json, column_name, winner_hlc, winner_origin, winner_value, loser_hlc, loser_origin, loser_value
                FROM georep_conflicts ORDER BY id DESC LIMIT ?
                """, arguments: [max(0, limit)]).map { row in
                func register(_ hlc: Int64, _ origin: String, _ value: String) -> LWWRegister<JSONValue> {
                    LWWRegister(stamp: Stamp(hlc: HLCTimestamp(rawValue: UInt64(bitPattern: hlc)), origin: origin),
                                value: JSONValue(parsing: Array(value.utf8)) ?? .null)
                }
                let keyJSON: String = row[2]
                let conflict = Conflict(
                    table: row[1], key: JSONValue(parsing: Array(keyJSON.utf8))?.objectValue ?? [:], column: row[3],
                    winner: register(row[4], row[5], row[6]), loser: register(row[7], row[8], row[9]))
                return ConflictRecord(id: row[0], conflict: conflict)
            }
        }
    }

    /// The highest HLC applied or recorded.
    public func highWaterMark() async throws -> HLCTimestamp {
        try await pool.read { db in
            HLCTimestamp(rawValue: UInt64(bitPattern: try Int64.fetchOne(db, sql: "SELECT high_water_mark FROM georep_clock WHERE id = 1") ?? 0))
        }
    }

    /// Raises the stored high-water mark to at least `timestamp`.
    public func recordHighWaterMark(_ timestamp: HLCTimestamp) async throws {
        try await pool.write { db in try self.raiseHighWaterMark(timestamp, in: db) }
    }
}
