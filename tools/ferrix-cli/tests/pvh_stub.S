# A minimal PVH guest for the ferrix-cli tests: prints bootstats lines like the ferrix kernel,
# then exits through isa-debug-exit with CODE (or triple-faults when RESET is defined).
.section .note.pvh, "a", @note
.align 4
.long 4
.long 4
.long 18                      # XEN_ELFNOTE_PHYS32_ENTRY
.asciz "Xen"
.align 4
.long _start

.text
.code32
.globl _start
_start:
    mov $0x80000, %esp
    rdtsc
    push %edx
    push %eax                 # start_tsc at 4(%esp)/0(%esp)
    mov $s_start, %esi
    call print_str
    pop %eax
    pop %edx
    call print_dec
    rdtsc
    push %edx
    push %eax
    mov $s_entry, %esi
    call print_str
    pop %eax
    pop %edx
    call print_dec
    mov $s_hz, %esi
    call print_str
    mov $s_hello, %esi
    call print_str
.ifdef RESET
    lidt bad_idt
    int3
.endif
    rdtsc
    push %edx
    push %eax
    mov $s_exit, %esi
    call print_str
    pop %eax
    pop %edx
    call print_dec
    mov $s_nl, %esi
    call print_str
    mov $0xf4, %dx
    mov $CODE, %eax
    out %eax, %dx
1:  hlt
    jmp 1b

print_str:                    # %esi: NUL-terminated string
    mov $0x3f8, %dx
2:  lodsb
    test %al, %al
    jz 3f
    out %al, %dx
    jmp 2b
3:  ret

print_dec:                    # %edx:%eax in decimal
    push %ebx
    push %ecx
    push %edi
    mov %edx, %edi
    mov %eax, %ebx
    xor %ecx, %ecx
4:  mov %edi, %eax
    xor %edx, %edx
    divl ten
    mov %eax, %edi
    mov %ebx, %eax
    divl ten
    mov %eax, %ebx
    add $'0', %dl
    push %edx
    inc %ecx
    mov %edi, %eax
    or %ebx, %eax
    jnz 4b
5:  pop %eax
    mov $0x3f8, %dx
    out %al, %dx
    loop 5b
    pop %edi
    pop %ecx
    pop %ebx
    ret

ten:     .long 10
bad_idt: .word 0
         .long 0
s_start: .asciz "ferrix-bootstats: start_tsc="
s_entry: .asciz " entry_tsc="
s_hz:    .asciz " tsc_hz=1000000000\n"
s_hello: .asciz "hello from the stub\n"
s_exit:  .asciz "ferrix-bootstats: exit_tsc="
s_nl:    .asciz "\n"
