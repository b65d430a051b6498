/// The total order of last-writer-wins merges: an HLC timestamp, then the origin region id.
///
/// Two events never share a stamp: a region's clock is strictly increasing, and different
/// regions differ by origin. A stamp also names an OR-Set add, as the tag `"<hlc>@<origin>"`.
public struct Stamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// When the write happened.
    public var hlc: HLCTimestamp
    /// The region that wrote it.
    public var origin: String

    /// Makes a stamp.
    public init(hlc: HLCTimestamp, origin: String) {
        self.hlc = hlc
        self.origin = origin
    }

    /// Parses a tag `"<hlc>@<origin>"`; nil when it is malformed.
    public init?(tag: some StringProtocol) {
        guard let at = tag.firstIndex(of: "@"),
              let hlc = HLCTimestamp(decimal: tag[..<at]) else { return nil }
        let origin = tag[tag.index(after: at)...]
        guard !origin.isEmpty else { return nil }
        self.init(hlc: hlc, origin: String(origin))
    }

    /// The tag form `"<hlc>@<origin>"` used by OR-Set adds.
    public var tag: String { "\(hlc)@\(origin)" }

    /// The tag form.
    public var description: String { tag }

    /// Orders by HLC, then by origin region id.
    public static func < (lhs: Stamp, rhs: Stamp) -> Bool {
        if lhs.hlc != rhs.hlc { return lhs.hlc < rhs.hlc }
        return lhs.origin < rhs.origin
    }

    /// Encodes as the tag string, compact in persisted merge state.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(tag)
    }

    /// Decodes the tag string.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let stamp = Stamp(tag: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "a stamp must be \"<hlc>@<origin>\"")
        }
        self = stamp
    }
}
