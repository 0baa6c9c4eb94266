// Package optim holds the numerics between the gradient engine and the adapter: AdamW with
// decoupled weight decay, learning-rate schedules, global gradient-norm clipping, group
// advantages, and the policy-gradient objective of training.md as per-token weights.
//
// Data flow of one optimizer step, as the trainer drives it:
//
//  1. the gradient engine computes log pi_theta(t) for every completion token (LogpNew);
//  2. PGLoss turns those, the rollout's old/behaviour/reference log-probs and the advantages into
//     the loss value and per-token weights w_t = d(loss)/d(LogpNew_t);
//  3. the engine backpropagates the weights into the LoRA gradients (Param.Grad);
//  4. ClipGradNorm scales the gradients and returns the pre-clip norm;
//  5. AdamW.Step applies the update with the schedule's learning rate.
//
// The loss is always the quantity to MINIMISE (the negated surrogate objective plus the KL
// penalty), so w_t has the sign of a gradient-descent direction's opposite: a token whose
// probability should rise has w_t < 0.
package optim
