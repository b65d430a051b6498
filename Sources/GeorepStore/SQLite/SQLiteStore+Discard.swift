public import GeorepModel
import GRDB

extension SQLiteStore: RowDiscardingStore {
    /// Removes the rows of `table` with `keys`, in one transaction.
    ///
    /// - Throws: `StoreError` for an unknown table; a GRDB `DatabaseError` on SQLite failures.
    public func discardRows(table: String, keys: [[String: JSONValue]]) async throws {
        guard let sql = tables[table] else { throw StoreError.unknownTable(table) }
        let match = sql.table.key.map { "\(quoted($0)) = ?" }.joined(separator: " AND ")
        let statement = "DELETE FROM \(quoted(sql.storageName)) WHERE \(match)"
        try await pool.write { db in
            for key in keys {
                try db.execute(sql: statement, arguments: sql.keyArguments(key))
            }
        }
    }

    /// Whether the rows past the fence point of `epoch` were rebuilt already.
    public func hasRebuiltFence(epoch: UInt64) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM georep_rebuilt_fences WHERE epoch = ?", arguments: [Int64(clamping: epoch)]) ?? false
        }
    }

    /// Records that the rows past the fence point of `epoch` are rebuilt.
    public func recordRebuiltFence(epoch: UInt64, rows: Int) async throws {
        try await pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO georep_rebuilt_fences (epoch, rows) VALUES (?, ?)", arguments: [Int64(clamping: epoch), rows])
        }
    }
}
