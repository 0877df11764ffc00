; Probe boot sector: enter 32-bit protected mode, then V86 mode through iret (as syslinux
; does to call the BIOS), print "V86OK" on COM1 from V86 mode, then spin.
bits 16
org 0x7c00
start:
  cli
  xor ax, ax
  mov ds, ax
  mov ss, ax
  mov sp, 0x7c00
  lgdt [gdt_desc]
  mov eax, cr0
  or eax, 1
  mov cr0, eax
  jmp 0x08:pm
bits 32
pm:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov esp, 0x7000
  mov ax, 0x18
  ltr ax
  push dword 0          ; gs
  push dword 0          ; fs
  push dword 0          ; ds
  push dword 0          ; es
  push dword 0          ; ss
  push dword 0x6000     ; esp
  push dword 0x23002    ; eflags: VM=1, IOPL=3
  push dword 0          ; cs
  push dword v86        ; eip
  iretd
bits 16
v86:
  mov dx, 0x3f8
  mov si, msg
.next:
  cs lodsb
  test al, al
  jz .spin
  out dx, al
  jmp .next
.spin:
  jmp .spin
msg: db "V86OK", 10, 0
align 8
gdt:
  dq 0
  dq 0x00cf9a000000ffff   ; 0x08 code
  dq 0x00cf92000000ffff   ; 0x10 data
  dw tss_end - tss - 1, tss, 0x8900, 0 ; 0x18 TSS (base = tss, below 64 KiB)
gdt_desc:
  dw gdt_desc - gdt - 1
  dd gdt
tss:
  dd 0, 0x7000, 0x10
  times 0x66 - 12 db 0
  dw 0x68               ; the I/O permission bitmap follows: V86 mode's IN/OUT consult it
  times 0x80 db 0       ; ports 0 to 0x3ff allowed (COM1 is 0x3f8)
  db 0xff
tss_end:
times 510 - ($ - $$) db 0
dw 0xaa55
