/// The record header names of change events (`docs/events-and-topics.md#the-record`) and of dead
/// letters (`docs/events-and-topics.md#dead-letters`).
public enum GeorepHeader {
    /// `georep-hlc`: the event's HLC timestamp, decimal.
    public static let hlc = "georep-hlc"
    /// `georep-origin`: the origin region id.
    public static let origin = "georep-origin"
    /// `georep-error`: on a dead letter, why the event was refused.
    public static let error = "georep-error"
    /// `georep-source`: on a dead letter, where it was consumed from (`topic[partition]@offset`).
    public static let source = "georep-source"
}
