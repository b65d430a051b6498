/// A grow-only set: union. Each element keeps the stamp of its latest add, so that a row
/// tombstone can hide adds written before it.
public struct GSet: Hashable, Sendable {
    /// Element (canonical string, compared by bytes) → stamp of its latest add.
    public private(set) var elements: [ByteString: Stamp]

    /// An empty set.
    public init() {
        elements = [:]
    }

    /// Adds an element with the add's stamp.
    public mutating func add(_ element: String, stamp: Stamp) {
        let element = ByteString(element)
        elements[element] = max(elements[element] ?? stamp, stamp)
    }

    /// Whether the element was added after `tombstone` (after the beginning when nil).
    public func contains(_ element: String, after tombstone: Stamp? = nil) -> Bool {
        guard let stamp = elements[ByteString(element)] else { return false }
        return tombstone.map { stamp > $0 } ?? true
    }

    /// The elements added after `tombstone`, sorted by their bytes.
    public func visibleElements(after tombstone: Stamp? = nil) -> [String] {
        elements.compactMap { element, stamp in tombstone.map { stamp > $0 } ?? true ? element : nil }.sorted().map(\.text)
    }

    /// Drops the elements last added at or before `stamp` (a row delete's tombstone).
    mutating func forget(upTo stamp: Stamp) {
        elements = elements.filter { $0.value > stamp }
    }

    /// Union, keeping each element's latest add stamp.
    public mutating func merge(_ other: GSet) {
        elements.merge(other.elements, uniquingKeysWith: max)
    }

    /// The union of two sets.
    public func merging(_ other: GSet) -> GSet {
        var copy = self
        copy.merge(other)
        return copy
    }
}
