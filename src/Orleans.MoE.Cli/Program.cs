using System.CommandLine;
using Orleans.MoE.Cli.Commands;

var root = new RootCommand("moe: serve and run Mixture-of-Experts language models (Orleans.MoE)");
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(InfoCommand.Create());
root.Subcommands.Add(VerifyCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(ClusterCommand.Create());
root.Subcommands.Add(CheckpointCommand.Create());
return await root.Parse(args).InvokeAsync();
