/// A 64-bit hybrid logical clock timestamp: 48 bits of Unix milliseconds, 16 bits of logical counter.
///
/// Timestamps order by their raw value, which orders by physical time first and by the
/// logical counter second. The textual and JSON forms are the decimal raw value, because
/// 64-bit values exceed the range of integers that JSON readers represent exactly.
public struct HLCTimestamp: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The number of bits of the logical counter.
    public static let logicalBits: UInt64 = 16
    /// The largest logical counter value.
    public static let maxLogical: UInt16 = .max
    /// The largest physical time, in milliseconds, that fits in 48 bits.
    public static let maxMillis: UInt64 = (1 << 48) - 1
    /// The smallest timestamp.
    public static let zero = HLCTimestamp(rawValue: 0)

    /// The packed value: milliseconds in the high 48 bits, the logical counter in the low 16.
    public let rawValue: UInt64

    /// Wraps a packed value.
    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// Packs a physical time and a logical counter; milliseconds beyond 48 bits are clamped.
    public init(millis: UInt64, logical: UInt16) {
        self.rawValue = (min(millis, Self.maxMillis) << Self.logicalBits) | UInt64(logical)
    }

    /// Parses the decimal form; nil when the text is not a decimal `UInt64`.
    public init?(decimal text: some StringProtocol) {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let raw = UInt64(text, radix: 10) else { return nil }
        self.rawValue = raw
    }

    /// The physical part: milliseconds since the Unix epoch.
    public var millis: UInt64 { rawValue >> Self.logicalBits }

    /// The logical counter.
    public var logical: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    /// The decimal raw value.
    public var description: String { String(rawValue) }

    /// Orders by raw value.
    public static func < (lhs: HLCTimestamp, rhs: HLCTimestamp) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

extension HLCTimestamp: Codable {
    /// Decodes the decimal string form, or a JSON integer for convenience.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let value = HLCTimestamp(decimal: text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "an HLC timestamp must be a decimal string of an unsigned 64-bit integer")
            }
            self = value
        } else {
            self.init(rawValue: try container.decode(UInt64.self))
        }
    }

    /// Encodes the decimal string form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
