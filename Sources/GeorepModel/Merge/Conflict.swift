/// Two concurrent scalar writes from different regions that met in a register merge.
public struct Conflict: Hashable, Sendable {
    /// The table.
    public var table: String
    /// The row's key.
    public var key: [String: JSONValue]
    /// The column under `lww-columns`; nil for a whole-row register (`lww`, `pinned`).
    public var column: String?
    /// The write that won.
    public var winner: LWWRegister<JSONValue>
    /// The write that lost.
    public var loser: LWWRegister<JSONValue>

    /// Makes a conflict record.
    public init(table: String, key: [String: JSONValue], column: String?, winner: LWWRegister<JSONValue>, loser: LWWRegister<JSONValue>) {
        self.table = table
        self.key = key
        self.column = column
        self.winner = winner
        self.loser = loser
    }

    /// The conflict between two writes of a register, or nil when they are not concurrent
    /// writes of different regions within `windowMillis` of each other.
    static func between(
        _ existing: LWWRegister<JSONValue>, _ incoming: LWWRegister<JSONValue>, windowMillis: UInt64,
        table: String, key: [String: JSONValue], column: String?
    ) -> Conflict? {
        guard existing.stamp.origin != incoming.stamp.origin else { return nil }
        let (a, b) = (existing.stamp.hlc.millis, incoming.stamp.hlc.millis)
        guard (a > b ? a - b : b - a) <= windowMillis else { return nil }
        let (winner, loser) = incoming.stamp > existing.stamp ? (incoming, existing) : (existing, incoming)
        return Conflict(table: table, key: key, column: column, winner: winner, loser: loser)
    }
}
