public import GeorepModel
import PostgresNIO

extension PostgresStore: RowDiscardingStore {
    /// Removes the rows of `table` with `keys`, in one transaction.
    ///
    /// - Throws: `StoreError` for an unknown table; a `PSQLError` on server failures.
    public func discardRows(table: String, keys: [[String: JSONValue]]) async throws {
        let sql = try tableSQL(table)
        var binds = PostgresBindings()
        binds.append(JSONValue.array(keys.map(sql.keyObject)).jsonText)
        try await transaction { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql.deleteRows, binds: binds), logger: self.logger)
        }
    }

    /// Whether the rows past the fence point of `epoch` were rebuilt already.
    public func hasRebuiltFence(epoch: UInt64) async throws -> Bool {
        let rows = try await client.query("SELECT 1 FROM georep_rebuilt_fences WHERE epoch = \(Int64(clamping: epoch))", logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Records that the rows past the fence point of `epoch` are rebuilt.
    public func recordRebuiltFence(epoch: UInt64, rows: Int) async throws {
        try await client.query("""
            INSERT INTO georep_rebuilt_fences (epoch, rows) VALUES (\(Int64(clamping: epoch)), \(rows))
            ON CONFLICT (epoch) DO UPDATE SET rows = excluded.rows, rebuilt_at = now()
            """, logger: logger)
    }
}
