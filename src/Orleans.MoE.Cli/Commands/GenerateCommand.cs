using System.CommandLine;

namespace Orleans.MoE.Cli.Commands;

/// <summary><c>moe generate</c>: stream a completion of a prompt.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var command = new Command("generate", "Generate text from a prompt, streaming tokens as they come");
        return command;
    }
}
