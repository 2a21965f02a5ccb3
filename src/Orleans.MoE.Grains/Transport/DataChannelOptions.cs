namespace Orleans.MoE.Grains.Transport;

/// <summary>The silo's data channel ("Mesh:DataChannel"): where it listens for expert batches and how long it waits.</summary>
public sealed class DataChannelOptions
{
    /// <summary>TCP port for the data channel, on the address the silo listens on; 0: any free port (published to the other silos either way).</summary>
    public int Port { get; set; }

    /// <summary>How long opening a connection to another silo's data channel (TLS included) may take.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The largest batch of rows accepted in one request or response.</summary>
    public long MaxPayloadBytes { get; set; } = 1L << 30;
}
