/// The read-your-writes token of an acknowledged write: `<origin region>:<partition>:<offset>`
/// (`docs/http-api.md#read-your-writes-tokens`), the position of the write's event in its
/// region's log.
public struct WriteToken: Hashable, Sendable, LosslessStringConvertible {
    /// The origin region.
    public var region: String
    /// The partition of the region's topic.
    public var partition: Int32
    /// The event's offset in that partition.
    public var offset: Int64

    /// Makes a token.
    public init(region: String, partition: Int32, offset: Int64) {
        self.region = region
        self.partition = partition
        self.offset = offset
    }

    /// Parses `<region>:<partition>:<offset>`; nil when malformed.
    public init?(_ description: String) {
        let parts = description.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, let partition = Int32(parts[1]), partition >= 0,
              let offset = Int64(parts[2]), offset >= 0 else { return nil }
        self.init(region: String(parts[0]), partition: partition, offset: offset)
    }

    /// Parses a comma-separated list of tokens (the `georep-token` request header); nil when
    /// any of them is malformed.
    public static func parseList(_ text: String) -> [WriteToken]? {
        var tokens: [WriteToken] = []
        for part in text.split(separator: ",") {
            guard let token = WriteToken(part.trimmingCharacters(in: .whitespaces)) else { return nil }
            tokens.append(token)
        }
        return tokens
    }

    /// `<region>:<partition>:<offset>`.
    public var description: String { "\(region):\(partition):\(offset)" }
}

import Foundation
