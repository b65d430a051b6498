public import GeorepModel

/// A store that can forget rows so that they are rebuilt from the log: after a failover, an old
/// primary rebuilds the rows it wrote past its fence point from every event but the fenced ones.
public protocol RowDiscardingStore: ReplicaStore {
    /// Removes the rows (their values and merge state) of `table` with `keys`, in one transaction.
    /// Stored positions, conflicts and the pinned directory are kept.
    func discardRows(table: String, keys: [[String: JSONValue]]) async throws

    /// Whether the rows written past the fence point of `epoch` were rebuilt already
    /// (``recordRebuiltFence(epoch:rows:)``).
    func hasRebuiltFence(epoch: UInt64) async throws -> Bool

    /// Records that the rows written past the fence point of `epoch` are rebuilt, so that a
    /// restart does not rebuild them again.
    func recordRebuiltFence(epoch: UInt64, rows: Int) async throws
}
