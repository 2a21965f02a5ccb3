using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Grains.Generation;

/// <summary>A sequence on this silo's scheduler: its tokens so far, how it ended, and who waits for more.</summary>
public sealed class Sequence
{
    private readonly List<int> _tokens = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal Sequence(GenerationRequest request, Sampler sampler, long admitted)
    {
        Request = request;
        Sampler = sampler;
        Admitted = admitted;
        Pending = request.Prompt;
        Trace = Activity.Current?.Context ?? default;
    }

    public GenerationRequest Request { get; }

    /// <summary>The KV cache, made when the sequence starts running (waiting sequences hold none).</summary>
    internal KvCache Cache { get; set; } = null!;

    internal Sampler Sampler { get; }

    internal long Admitted { get; }

    /// <summary>The trace of the call that admitted the sequence (its completion's), or none: the parent of the steps that run it.</summary>
    internal ActivityContext Trace { get; }

    internal long LastToken { get; set; }

    /// <summary>Tokens to run at the next step: the prompt, then the last token produced.</summary>
    internal int[] Pending { get; set; }

    public string? Finish { get; private set; }

    public Exception? Error { get; private set; }

    public bool IsDone => Finish is not null || Error is not null;

    public int Count
    {
        get
        {
            lock (_tokens)
            {
                return _tokens.Count;
            }
        }
    }

    /// <summary>When the caller last asked for tokens (the reader lease).</summary>
    public long LastRead { get; set; } = Stopwatch.GetTimestamp();

    /// <summary>Tokens from <paramref name="from"/> on, waiting up to <paramref name="wait"/> for at least one or the end.</summary>
    public async Task<GenerationChunk> ReadAsync(int from, TimeSpan wait)
    {
        LastRead = Stopwatch.GetTimestamp();
        Task changed;
        lock (_tokens)
        {
            if (from < _tokens.Count || IsDone)
            {
                return Snapshot(from);
            }

            changed = _changed.Task;
        }

        await Task.WhenAny(changed, Task.Delay(wait)).ConfigureAwait(false);
        LastRead = Stopwatch.GetTimestamp();
        lock (_tokens)
        {
            return Snapshot(from);
        }
    }

    public void Cancel(string reason) => Fail(new OperationCanceledException(reason));

    internal void Add(int token, string? finish)
    {
        lock (_tokens)
        {
            _tokens.Add(token);
            Finish = finish;
            Signal();
        }
    }

    internal void Fail(Exception error)
    {
        lock (_tokens)
        {
            Error ??= error;
            Signal();
        }
    }

    private GenerationChunk Snapshot(int from)
    {
        if (Error is not null)
        {
            throw Error is OperationCanceledException ? new OperationCanceledException(Error.Message) : Error;
        }

        return new GenerationChunk(_tokens.Skip(Math.Max(0, from)).ToArray(), Finish);
    }

    private void Signal()
    {
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }
}

/// <summary>
/// Continuous batching on this silo: for each model, one loop advances every admitted sequence together,
/// one step at a time (a new sequence's first step runs its whole prompt); sequences join and leave
/// between steps. The scheduler owns their KV caches. Attention, dense layers and sampling run here;
/// each MoE layer goes through the layer's gate on this silo. A step that fails is undone (caches
/// truncated) and its sequences fail with the error; admission is bounded and answers "busy" when full.
/// </summary>
public sealed partial class GenerationScheduler(
    MeshModels models, IGrainFactory grains, MeshMetrics metrics, IOptions<MeshOptions> options, ILogger<GenerationScheduler> logger)
    : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    private readonly MeshModels _models = models;
    private readonly IGrainFactory _grains = grains;
    private readonly MeshMetrics _metrics = metrics;
    private readonly SchedulerOptions _options = options.Value.Scheduler;
    private readonly ILogger _logger = logger;
    private readonly ConcurrentDictionary<string, ModelLoop> _loops = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private int _queued;

    /// <summary>Sequences running or waiting on this silo.</summary>
    public int Queued => Volatile.Read(ref _queued);

    /// <summary>Validates the request and queues the sequence, or throws (unknown model, context exceeded, busy).</summary>
    public Sequence Admit(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var model = _models.Get(request.Model);
        var config = model.Network.Config;
        GenerationRules.Check(request.Prompt, request.MaxNewTokens, config.VocabSize, config.MaxPositionEmbeddings, request.Resumed);

        var sampling = new SamplingOptions { Temperature = request.Temperature, TopK = request.TopK, TopP = request.TopP, Seed = request.Seed };
        var sampler = new Sampler(sampling);
        sampler.Skip(request.Resumed);
        if (Interlocked.Increment(ref _queued) > _options.MaxQueuedSequences)
        {
            Interlocked.Decrement(ref _queued);
            throw new MeshBusyException($"this silo is busy: {_options.MaxQueuedSequences} sequences are running or waiting; try again shortly");
        }

        var sequence = new Sequence(request, sampler, Stopwatch.GetTimestamp());
        LogAdmitted(_logger, request.RequestId ?? "-", request.Model, request.Prompt.Length, request.MaxNewTokens);
        _loops.GetOrAdd(request.Model, name => new ModelLoop(this, name)).Enqueue(sequence);
        return sequence;
    }

    /// <summary>
    /// When the silo stops (gracefully or not), the steps in flight are cancelled and every sequence here
    /// is lost to its caller, who resubmits it to another silo: nothing waits for a step on a leaving silo.
    /// </summary>
    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        lifecycle.Subscribe<GenerationScheduler>(ServiceLifecycleStage.Active, _ => Task.CompletedTask, _ => _stopping.CancelAsync());
    }

    public void Dispose()
    {
        _stopping.Cancel();
        foreach (var loop in _loops.Values)
        {
            loop.Dispose();
        }
    }

    /// <summary>One model's batching loop.</summary>
    private sealed class ModelLoop : IDisposable
    {
        private readonly GenerationScheduler _owner;
        private readonly string _model;
        private readonly ConcurrentQueue<Sequence> _waiting = new();
        private readonly SemaphoreSlim _wake = new(0);
        private readonly List<Sequence> _active = [];

        public ModelLoop(GenerationScheduler owner, string model)
        {
            _owner = owner;
            _model = model;

            // Not in the context of the request that happened to create it: its log lines would carry that request's scopes forever.
            using (ExecutionContext.SuppressFlow())
            {
                _ = Task.Run(RunAsync);
            }
        }

        public void Dispose() => _wake.Dispose();

        public void Enqueue(Sequence sequence)
        {
            _waiting.Enqueue(sequence);
            _wake.Release();
        }

        private async Task RunAsync()
        {
            var stopping = _owner._stopping.Token;
            var executor = new MeshMoeExecutor(_owner._grains, _model);
            var lease = _owner._options.ReaderLease;
            while (!stopping.IsCancellationRequested)
            {
                if (_active.Count == 0)
                {
                    try
                    {
                        await _wake.WaitAsync(stopping).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }

                try
                {
                    while (_active.Count < _owner._options.MaxBatchSequences && _waiting.TryDequeue(out var next))
                    {
                        // Room for the prompt and a first stretch of tokens; the cache grows by doubling after that.
                        next.Cache = _owner._models.Get(_model).Network.CreateCache(next.Request.Prompt.Length + Math.Min(next.Request.MaxNewTokens, 256));
                        _active.Add(next);
                    }

                    foreach (var idle in _active.Where(s => !s.IsDone && Stopwatch.GetElapsedTime(s.LastRead) > lease).ToList())
                    {
                        idle.Cancel($"nobody read the sequence for {lease}");
                    }

                    Retire(_active.Where(s => s.IsDone).ToList());
                    if (_active.Count > 0)
                    {
                        await StepAsync(executor).ConfigureAwait(false);
                    }
                }
                catch (Exception e)
                {
                    // Whatever went wrong outside the forward pass: these sequences end with it, the loop goes on.
                    foreach (var sequence in _active)
                    {
                        sequence.Fail(e);
                    }

                    LogStepFailed(_owner._logger, _model, _active.Count, e.Message);
                    Retire(_active.ToList());
                }
            }
        }

        private async Task StepAsync(MeshMoeExecutor executor)
        {
            // Decode tokens first, so running sequences never wait behind a long prompt; then prompt chunks
            // up to the step's token budget (a prompt longer than that is prefilled over several steps).
            var budget = _owner._options.MaxStepTokens;
            var batch = new List<Sequence>();
            var chunks = new List<int[]>();
            foreach (var sequence in _active.OrderBy(s => s.Pending.Length))
            {
                var take = Math.Min(sequence.Pending.Length, budget);
                if (take == 0)
                {
                    break;
                }

                batch.Add(sequence);
                chunks.Add(take == sequence.Pending.Length ? sequence.Pending : sequence.Pending[..take]);
                budget -= take;
            }

            var lengths = batch.Select(s => s.Cache.Length).ToArray();
            using var span = StartStep(batch, chunks.Sum(c => c.Length));
            float[][] logits;
            try
            {
                var network = _owner._models.Get(_model).Network;
                logits = await network.ForwardBatchAsync(batch.Select((s, i) => new SequenceStep(chunks[i], s.Cache)).ToArray(), executor, cancellationToken: _owner._stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                var error = _owner._stopping.IsCancellationRequested
                    ? new SequenceLostException("the silo running the sequence is stopping; submit it again", e)
                    : e;
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Cache.Truncate(lengths[i]);
                    batch[i].Fail(error);
                }

                span?.SetStatus(ActivityStatusCode.Error, e.Message);

                LogStepFailed(_owner._logger, _model, batch.Count, e.Message);
                Retire(batch);
                return;
            }

            for (var i = batch.Count - 1; i >= 0; i--)
            {
                if (chunks[i].Length < batch[i].Pending.Length)
                {
                    // Part of a prompt: the rest comes next step, and nothing is sampled yet.
                    batch[i].Pending = batch[i].Pending[chunks[i].Length..];
                    batch.RemoveAt(i);
                    logits = [.. logits[..i], .. logits[(i + 1)..]];
                }
            }

            for (var i = 0; i < batch.Count; i++)
            {
                var sequence = batch[i];
                var token = sequence.Sampler.Next(logits[i]);
                var finish = FinishRule.After(token, sequence.Count + 1, sequence.Request.StopTokens, sequence.Request.MaxNewTokens)?.Name();
                var now = Stopwatch.GetTimestamp();
                var first = sequence.Count == 0;
                _owner._metrics.TokenGenerated(_model, first, Stopwatch.GetElapsedTime(first ? sequence.Admitted : sequence.LastToken, now));
                sequence.LastToken = now;
                sequence.Pending = [token];
                sequence.Add(token, finish);
            }

            Retire(batch.Where(s => s.IsDone).ToList());
        }

        /// <summary>
        /// The step's span, in the trace of its first traced sequence (linked to the others': a step serves
        /// every sequence of the batch); none without a listener, without a traced sequence, or when that trace is not sampled.
        /// </summary>
        private Activity? StartStep(List<Sequence> batch, int tokens)
        {
            if (!MeshTelemetry.Source.HasListeners())
            {
                return null;
            }

            var traced = batch.Where(s => s.Trace != default).Select(s => s.Trace).ToList();
            if (traced.Count == 0)
            {
                return null;
            }

            var span = MeshTelemetry.Source.StartActivity(
                "moe.scheduler.step", ActivityKind.Internal, traced[0], links: traced.Skip(1).Select(t => new ActivityLink(t)));
            span?.SetTag("gen_ai.request.model", _model).SetTag("moe.sequences", batch.Count).SetTag("moe.tokens", tokens);
            return span;
        }

        private void Retire(List<Sequence> done)
        {
            foreach (var sequence in done)
            {
                if (_active.Remove(sequence))
                {
                    Interlocked.Decrement(ref _owner._queued);
                    LogEnded(_owner._logger, sequence.Request.RequestId ?? "-", _model, sequence.Count, sequence.Finish ?? sequence.Error?.Message ?? "?");
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Request {RequestId}: sequence admitted for model {Model} ({PromptTokens} prompt tokens, up to {MaxNewTokens} new)")]
    private static partial void LogAdmitted(ILogger logger, string requestId, string model, int promptTokens, int maxNewTokens);

    [LoggerMessage(Level = LogLevel.Information, Message = "Request {RequestId}: sequence of model {Model} ended after {Tokens} tokens: {Outcome}")]
    private static partial void LogEnded(ILogger logger, string requestId, string model, int tokens, string outcome);

    [LoggerMessage(Level = LogLevel.Error, Message = "A generation step of model {Model} failed for {Sequences} sequences: {Reason}")]
    private static partial void LogStepFailed(ILogger logger, string model, int sequences, string reason);
}
