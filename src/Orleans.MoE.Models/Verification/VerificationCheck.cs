namespace Orleans.MoE.Models.Verification;

/// <summary>One comparison against a reference: the largest absolute difference and the tolerance it must stay within.</summary>
public sealed record VerificationCheck(string Model, string Check, double MaxAbsDiff, double Tolerance, bool Passed, string? Detail = null);
