/* gemm/twins.h: test-only plain C twins of the GEMM micro-kernels: the same contracts as
 * ukr_MRxNV and ukrc_MPxNV (gemm/microkernels.h), one output element at a time, each
 * reduced in the kernels' order (the seed, then k ascending, one multiply-add each: fused
 * where the variant's vector code fuses, fused != 0). Compiled once per dtype (FNT, in the
 * baseline variant: GCONV_TWINS) and called by every variant's gemm/microkernel_test.h;
 * expects common/twins.h. */

/* ukr_MRxNV's contract: C[i][q] (=|+=) seed + sum_k A[k*MR + i] * B[boff[k] + q] for rows
 * i < m and columns q < n, or, with a wide map (q0, PW, OW, rows), columns q < NR sent to
 * C[r*OW + c] for the wide pixel q0 + q = r*PW + c when c < OW and r < rows. */
static void FNT(gemm_ukr_twin)(int fused, int MR, int NR, long K, const T *A, const T *B,
                               const long *boff, T *C, long ldc, int m, int n, const T *bias,
                               int accumulate, const long *wide)
{
    for (int i = 0; i < m; i++)
        for (long q = 0; q < (wide ? NR : n); q++) {
            T *c = C + i * ldc + q;
            if (wide) {
                const long r = (wide[0] + q) / wide[1], col = (wide[0] + q) % wide[1];
                if (col >= wide[2] || r >= wide[3]) continue;
                c = C + i * ldc + r * wide[2] + col;
            }
            T acc = bias ? bias[i] : (T)0;
            for (long k = 0; k < K; k++) acc = FNT(twin_madd)(fused, A[k * MR + i], B[boff[k] + q], acc);
            *c = accumulate ? *c + acc : acc;
        }
}

/* ukrc_MPxNV's contract: stage[i*NR + c] = seed + sum_k B[boff[k] + i] * A[k*NR + c] for
 * MP pixels i and NR channels c (seed: bias[c], or 0). */
static void FNT(gemm_ukrc_twin)(int fused, int MP, int NR, long K, const T *A, const T *B,
                                const long *boff, T *stage, const T *bias)
{
    for (int i = 0; i < MP; i++)
        for (int c = 0; c < NR; c++) {
            T acc = bias ? bias[c] : (T)0;
            for (long k = 0; k < K; k++) acc = FNT(twin_madd)(fused, B[boff[k] + i], A[k * NR + c], acc);
            stage[i * NR + c] = acc;
        }
}
