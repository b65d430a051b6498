public import Foundation

/// The package's executables, found beside the running test bundle (any configuration or build path).
public enum BuildProducts {
    /// The `georep` executable.
    public static var georep: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("georep")
    }
}
